"""Retrieval over a transcript: token estimates, words for BM25, and the passages sent with a question.

When the transcript is over the token budget, only the passages most relevant to the question
(BM25) and their neighbours are sent (`select_context`). Token counts are estimated by script
(Chinese costs about a token a character, English about a quarter), with no tokenizer to
download. Chinese and Japanese, which have no spaces between words, are cut into character
pairs for BM25 (`tokenize`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from rank_bm25 import BM25Okapi

from ..transcript import Segment, Transcript, format_timestamp, speaker_stats

PASSAGE_SECONDS = 60.0  # segments are grouped into passages of about this length for retrieval

# The letters of Chinese, Japanese and Korean: Han (with 々〆〇), kana, Hangul. Chinese and
# Japanese have no spaces between words, so BM25 gets their character bigrams (see `tokenize`).
_CJK_BMP = ("\u1100-\u11ff\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff"
            "\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7a3"
            "\ud7b0-\ud7ff\uf900-\ufaff")
_CJK = _CJK_BMP + "\U00020000-\U000323af"  # with the rare Han characters beyond the BMP

# Tokens per character by script, no tokenizer download needed. Conservative for the tokenizers
# the app meets: o200k (gpt-4o, gpt-4o-mini), cl100k (gpt-4, gpt-3.5-turbo), Llama 3's and
# Qwen's (local servers). Measured on a meeting's opening in 26 languages, with and without a
# timestamp on every line: the estimate came out at 1.04-7.2x the real count on all four, and at
# 1.12x or more on o200k, except for rare Han characters (below) and Armenian on cl100k (0.94).
ASCII_TOKENS_PER_CHAR = 1 / 3  # English runs 0.20 (0.23 with timestamps), Spanish and German 0.28
SCRIPT_TOKENS_PER_CHAR = (
    (re.compile(r"[\x00-\x7f]+"), ASCII_TOKENS_PER_CHAR),
    # Cyrillic, Arabic (Persian, Urdu): at most 0.74 measured (cl100k); 0.27-0.37 on o200k.
    (re.compile("[\u0400-\u052f\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]+"), 1.0),
    # Chinese, Japanese, Korean and their punctuation and full-width forms: 1.10 at most
    # (Chinese, cl100k), 0.55-0.69 on o200k. Rare Han characters cost more (1.6-1.9), but they
    # are rare and the margin on common text pays for them. Also Latin letters with accents
    # (Vietnamese: 0.50 a character overall), Greek, Hebrew and Thai (0.91-0.94 at most), and
    # punctuation like "…" and curly quotes.
    (re.compile(f"[{_CJK_BMP}\u2e80-\u2fdf\u3000-\u33ff\ufe30-\ufe4f\uff00-\uffef\u0080-\u024f\u1e00-\u1eff"
                "\u0370-\u03ff\u1f00-\u1fff\u0590-\u05ff\ufb1d-\ufb4f\u0e00-\u0e7f\u2000-\u206f]+"), 1.25),
)
# Any other character costs its UTF-8 length: a byte-level tokenizer (or a SentencePiece one with
# byte fallback) never spends more than a token a byte. That covers the scripts cl100k and Llama
# 3 serve worst, Devanagari and the other Indic scripts, Georgian, Armenian, Ethiopic, Myanmar
# (1-2.4 tokens a character there; 0.3-0.55 on o200k, but Ethiopic 1.8), and characters outside
# the BMP (rare Han, emoji: up to 3.45), which cost 4.
_RATED = re.compile("|".join(rx.pattern for rx, _ in SCRIPT_TOKENS_PER_CHAR))


def estimate_tokens(text: str) -> int:
    """A ceiling on what the model's tokenizer makes of `text`, counted by script, so that the
    budget holds in Chinese (about a token a character) as in English (about a quarter)."""
    if text.isascii():
        return math.ceil(len(text) * ASCII_TOKENS_PER_CHAR)
    rated = sum(rate * sum(map(len, rx.findall(text))) for rx, rate in SCRIPT_TOKENS_PER_CHAR)
    return math.ceil(rated + len(_RATED.sub("", text).encode()))


# A run of CJK letters (group 1), or a word of any other script.
TOKEN = re.compile(rf"([{_CJK}]+)|[^\W{_CJK}]+")
_KANA_VOICING = "\u3099\u309a"  # combining marks, but が is not か the way é is e


def fold(text: str) -> str:
    """Lower case, without accents (é → e), one width (ＡＢＣ → abc, ｶﾞｽ → ガス)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch) or ch in _KANA_VOICING)
    return unicodedata.normalize("NFC", kept)  # kana and Hangul syllables back in one piece


def tokenize(text: str, *, passage: bool = False) -> list[str]:
    """Words for BM25, the same way for a question and a passage, so that a question's words are
    the passage's when it says them. Other scripts: words of two letters or more. Chinese,
    Japanese and Korean, which a `\\w+` would take a whole clause at a time: overlapping character
    bigrams (北京大学 → 北京 京大 大学), a lone character as itself, as Lucene's CJKAnalyzer does
    without a dictionary. A passage (`passage=True`) also lists each CJK character on its own:
    a one-character word of a question (年 in "2024年", 钱, 猫) then finds the passages where
    it sits inside a longer run."""
    words: list[str] = []
    for match in TOKEN.finditer(fold(text)):
        run = match.group(1)
        if run is None:
            if len(match.group()) > 1:  # a lone Latin letter says nothing
                words.append(match.group())
            continue
        words += [run[i:i + 2] for i in range(len(run) - 1)] or [run]
        if passage and len(run) > 1:
            words += run
    return words


def escape_tags(text: str) -> str:
    """Keep spoken or injected text from closing the data block (or a block of notes)."""
    return re.sub(r"<\s*/?\s*(transcript|notes)\s*>", lambda m: m.group(0).replace("<", "‹").replace(">", "›"),
                  text, flags=re.IGNORECASE)


def segment_line(seg: Segment, hours: bool, speaker: str | None = None) -> str:
    """A segment as the transcript is sent: its start in brackets, then its speaker's name and a
    colon when it is known (`Transcript.speaker_of`), then its text. The name is user input: it
    is escaped like the text, and kept on one line."""
    said = escape_tags(seg.text)
    if speaker:
        said = f"{escape_tags(' '.join(speaker.split()))}: {said}"
    return f"[{format_timestamp(seg.start, hours=hours)}] {said}"


def passage_texts(transcript: Transcript, passages: list[list[Segment]]) -> list[str]:
    """Each passage's lines as sent (`segment_line`, with the speakers' names)."""
    hours = transcript.duration >= 3600
    return ["\n".join(segment_line(s, hours, transcript.speaker_of(s)) for s in p) for p in passages]


def lines_described(transcript: Transcript) -> str:
    """How the transcript's lines are laid out, for the message that sends them."""
    return "one line per segment with its start time" + (
        " and, when known, its speaker's name" if transcript.has_speakers else "")


def _talk_time(seconds: float) -> str:
    """A talking time in words, never like a citation: "45 s", "12 min 5 s", "1 h 02 min"."""
    total = int(round(seconds))
    if total >= 3600:
        return f"{total // 3600} h {total % 3600 // 60:02d} min"
    return f"{total // 60} min {total % 60} s" if total >= 60 else f"{total} s"


def speakers_table(transcript: Transcript) -> str:
    """A line per speaker with their talking time and share of the speech (`speaker_stats`,
    computed, so that "how long did each person speak?" is answered from numbers, not guessed),
    after a newline; "" without speakers, so that their messages stay as they were."""
    stats = speaker_stats(transcript)
    if not stats:
        return ""
    rows = "\n".join(f"- {escape_tags(' '.join(s.name.split()))}: {_talk_time(s.seconds)} ({s.share:.0%})"
                     for s in stats)
    return f"\nThe speakers, with how long each spoke in all and their share of the speech:\n{rows}"


def with_speaker_rule(rules: str, transcript: Transcript, rule: str) -> str:
    """The rules, with `rule` added as the last numbered one when the transcript has speakers
    (unchanged without them: the same request, the same cached answers)."""
    if not transcript.has_speakers:
        return rules
    last = re.findall(r"^(\d+)\. ", rules, flags=re.MULTILINE)
    return f"{rules}\n{int(last[-1]) + 1 if last else 1}. {rule}"


@dataclass(frozen=True)
class Context:
    """The transcript as sent with a question: all of it, or (`partial`) its best passages."""

    text: str  # what goes between the transcript tags
    partial: bool
    passages_used: int
    passages_total: int


def group_passages(segments: list[Segment], seconds: float = PASSAGE_SECONDS) -> list[list[Segment]]:
    """Consecutive segments grouped into passages of about `seconds` (0: one segment each)."""
    passages: list[list[Segment]] = []
    for seg in segments:
        if passages and seg.start - passages[-1][0].start < seconds:
            passages[-1].append(seg)
        else:
            passages.append([seg])
    return passages


def select_context(transcript: Transcript, query: str, budget_tokens: int) -> Context:
    """The whole transcript if it fits the budget, else the best BM25 passages with neighbours."""
    passages = group_passages([s for s in transcript.segments if s.text])
    texts = passage_texts(transcript, passages)
    whole = "\n".join(texts)
    if estimate_tokens(whole) <= budget_tokens or not passages:
        return Context(whole, False, len(passages), len(passages))

    docs = [tokenize(t, passage=True) or ["_"] for t in texts]
    scores = BM25Okapi(docs).get_scores(tokenize(query) or ["_"])
    ranked = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
    chosen: set[int] = set()
    used = 0
    for best in ranked:
        for i in (best, best - 1, best + 1):  # the passage, then its neighbours for context
            if 0 <= i < len(passages) and i not in chosen:
                cost = estimate_tokens(texts[i]) + 1
                if used + cost > budget_tokens:
                    continue
                chosen.add(i)
                used += cost
        if used >= budget_tokens * 0.97:
            break
    lines, last = [], None
    for i in sorted(chosen):
        if last is not None and i != last + 1 or last is None and i != 0:
            lines.append("[…]")
        lines.append(texts[i])
        last = i
    if last is not None and last != len(passages) - 1:
        lines.append("[…]")
    return Context("\n".join(lines), True, len(chosen), len(passages))


# Function words of the two UI languages, and of Chinese and Japanese (pronouns, particles, verb
# endings, question words): sharing only these is not a match. They are cut by `tokenize`, as a
# question is: 什么时候 ("when") stops 什么, 么时 and 时候; qué stops que.
FUNCTION_WORDS = """a an and are as at be but by did do does for from had has have he her his how i if in
into is it its me my no not of on or our she so than that the their them then there these they this those
to was we were what when where which who why will with would you your el la los las un una unos unas y o
de del al en con por para que es son fue era se lo le les su sus mi tu como cuando donde quien qué cómo
cuándo dónde quién muy más pero sin sobre este esta estos estas ese esa
的 了 是 在 和 与 也 都 就 还 吗 呢 吧 啊 呀 我 你 您 他 她 它 这 那 哪 谁 有 不 没 个 把 被 给 对 从
我们 你们 他们 她们 它们 咱们 什么时候 为什么 怎么样 怎样 哪里 哪儿 哪个 这个 那个 这些 那些 这里 那里
一个 一下 一些 没有 可以 就是 不是 还是 是不是 因为 所以 但是 如果 已经 的话 然后 还有 或者 而且 多少 请问 告诉
の は が を に で と も へ や か な ね よ た て だ し 何 誰 私 僕
です ですか でした でしょう ます ますか ました ません ください この その あの どの これ それ あれ どれ
ここ そこ あそこ どこ いつ なに なん だれ どう どんな ある あります いる います こと もの ため から まで より
など よう ので けど という について として している していた はい ええ えっと 教えて"""
STOPWORDS = frozenset(word for text in FUNCTION_WORDS.split() for word in tokenize(text))


def rank_passages(transcript: Transcript, query: str, seconds: float = PASSAGE_SECONDS
                  ) -> list[tuple[float, list[Segment]]]:
    """Passages of the transcript that share a content word with `query`, best first (BM25, then
    the number of shared words, which still ranks when the transcript is too short for BM25)."""
    passages = group_passages([s for s in transcript.segments if s.text], seconds)
    words = [w for w in tokenize(query) if w not in STOPWORDS]
    if not passages or not words:
        return []
    docs = [tokenize(" ".join(s.text for s in p), passage=True) or ["_"] for p in passages]
    scores = BM25Okapi(docs).get_scores(words)
    shared = [len(set(words) & set(doc)) for doc in docs]
    ranked = sorted(range(len(passages)), key=lambda i: (-scores[i], -shared[i], i))
    return [(float(scores[i]), passages[i]) for i in ranked if shared[i]]
