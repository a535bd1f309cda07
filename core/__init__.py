"""Talk to your Audio: transcribe recordings of any length and answer questions from them."""

from .config import Settings
from .errors import AppError
from .transcript import Segment, Transcript

__all__ = ["AppError", "Segment", "Settings", "Transcript"]
