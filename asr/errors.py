"""Errors callers of asr can tell apart, with messages that name the file or folder concerned."""


class ModelNotFound(LookupError):
    """No model installed for a language; the message names the folder to unpack one into."""


class ModelIntegrityError(RuntimeError):
    """A pinned model file differs from the manifest (a changed upload of the package)."""


class AudioFileError(ValueError):
    """A file that is missing, empty, not audio, or not at the sample rate required."""
