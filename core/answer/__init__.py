"""Answers and summaries from a transcript: `chat` answers questions, `summary` writes the
summary and chapters; `retrieval`, `mapreduce` and `completion` are what they share."""
