"""Offline speech recognition with Vosk: model registry per language, streaming and grammar recognisers on a
worker pool, full-call transcripts. Knows nothing of telephony or tickets."""

from .audio import FRAME_BYTES, PHONE_RATE, read_wav
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
    "AsrSettings", "AudioFileError", "Endpointer", "FRAME_BYTES", "ListeningTurn", "ModelIntegrityError",
    "ModelNotFound", "ModelRegistry", "PHONE_RATE", "Phase", "PoolMetrics", "RecognitionPool", "Stream",
    "StreamRecognizer", "Transcript", "TranscriptionStopped", "TranscriptJobs", "TurnResult", "UNKNOWN_WORD",
    "Utterance", "VoiceActivity", "Word", "available_languages", "configure",
    "default_registry", "match_phrase", "read_wav",
    "transcribe_file", "transcribe_pcm", "transcript_path_for",
]
