"""Offline speech recognition with Vosk: model registry per language, streaming and grammar recognisers on a
worker pool, full-call transcripts. Knows nothing of telephony or tickets."""

from .endpoint import Endpointer, Phase, VoiceActivity
from .errors import AudioFileError, ModelIntegrityError, ModelNotFound
from .models import ModelRegistry, available_languages, configure, default_registry
from .pool import PoolMetrics, RecognitionPool, Stream
from .recognizer import UNKNOWN_WORD, StreamRecognizer, match_phrase
from .results import Utterance, Word
from .settings import AsrSettings
from .transcript import (Transcript, TranscriptionStopped, TranscriptJobs, transcribe_file, transcribe_pcm,
                         transcript_path_for)
from .turn import ListeningTurn, TurnResult

__all__ = [
    "AsrSettings", "AudioFileError", "Endpointer", "ListeningTurn", "ModelIntegrityError", "ModelNotFound",
    "ModelRegistry", "Phase", "PoolMetrics", "RecognitionPool", "Stream", "StreamRecognizer", "Transcript",
    "TranscriptionStopped", "TranscriptJobs", "TurnResult", "UNKNOWN_WORD", "Utterance", "VoiceActivity", "Word",
    "available_languages", "configure", "default_registry", "match_phrase",
    "transcribe_file", "transcribe_pcm", "transcript_path_for",
]
