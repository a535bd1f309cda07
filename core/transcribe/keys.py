"""Cache keys of transcripts and chunks. Everything that changes what comes out is in them, so a
change makes a new entry, never a mix; their composition must not change, or every cached
transcript would be lost."""

from __future__ import annotations

import hashlib

from ..audio import chunking, voice
from ..audio.chunking import Chunk
from ..cache import make_key
from ..config import Settings
from .backends.base import Backend
from .cutting import by_utterance, piece_seconds, ramp

# What decides the pieces, in the transcript key: a change makes a new transcript, never a mix.
UTTERANCE_CUTS = ("utterances", chunking.PIECE_MAX_SECONDS, chunking.GAP_MIN_SECONDS, voice.VAD_PAUSE_MS,
                  chunking.PIECE_OVERLAP_SECONDS)


def transcript_key(digest: str, backend: Backend, settings: Settings) -> str:
    """The key of the transcript of the recording whose content hash is `digest`."""
    if by_utterance(backend):
        return make_key("transcript", digest, backend.cache_params(), *UTTERANCE_CUTS,
                        piece_seconds(settings), settings.min_silence_ms)
    return make_key("transcript", digest, backend.cache_params(), settings.target_chunk_seconds,
                    settings.chunk_overlap_seconds, *ramp(settings))


def chunk_key(chunk: Chunk, backend: Backend) -> str:
    """The key of one chunk's segments: its audio and the backend."""
    return make_key("chunk", hashlib.sha256(chunk.pcm).hexdigest(), backend.cache_params())
