"""Offline speech recognition with Vosk: model registry per language, streaming and grammar recognisers on a
worker pool, full-call transcripts. Knows nothing of telephony or tickets."""

from .errors import AudioFileError, ModelIntegrityError, ModelNotFound
from .models import ModelRegistry, available_languages, configure, default_registry
from .pool import PoolMetrics, RecognitionPool, Stream
from .recognizer import UNKNOWN_WORD, StreamRecognizer, match_phrase
from .results import Utterance, Word
from .settings import AsrSettings
from .transcript import (Transcript, TranscriptionStopped, TranscriptJobs, transcribe_file, transcribe_pcm,
                         transcript_path_for)

__all__ = [
    "AsrSettings", "AudioFileError", "ModelIntegrityError", "ModelNotFound", "ModelRegistry",
    "PoolMetrics", "RecognitionPool", "Stream", "StreamRecognizer", "Transcript",
    "TranscriptionStopped", "TranscriptJobs", "UNKNOWN_WORD", "Utterance", "Word", "available_languages",
    "configure", "default_registry", "match_phrase",
    "transcribe_file", "transcribe_pcm", "transcript_path_for",
]
