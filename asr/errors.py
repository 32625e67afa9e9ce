"""Errors callers of asr can tell apart, with messages that name the file or folder concerned."""

from __future__ import annotations

# A file that is missing, empty, not audio, or not at the rate required: raised by the project's audio
# contract (pcm.read_wav), which asr reads recordings with; named here beside asr's own errors.
from pcm import AudioFileError

__all__ = ["AudioFileError", "ModelIntegrityError", "ModelNotFound"]


class ModelNotFound(LookupError):
    """No model installed for a language; the message names the folder to unpack one into."""


class ModelIntegrityError(RuntimeError):
    """A pinned model file differs from the manifest (a changed upload of the package)."""
