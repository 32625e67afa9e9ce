"""Full-call transcripts: a recorded call WAV decoded into words with timings, stored as JSON.

Runs in the background on its own single worker so transcribing finished calls never competes with more
than one core's worth of live recognition. asr knows nothing of calls or tickets: the job stores the file and
hands the Transcript to `on_done`, and the composition root links it to the call and ticket.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import vosk

from pcm import FRAME_BYTES, read_wav, seconds
from .models import ModelRegistry, default_registry
from .recognizer import StreamRecognizer
from .results import Utterance, Word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    source: str          # the audio file transcribed
    language: str
    duration: float      # seconds of audio
    utterances: list[Utterance] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.utterances if u.text)

    @property
    def words(self) -> list[Word]:
        return [w for u in self.utterances for w in u.words]

    def to_json(self) -> str:
        data = asdict(self)
        data["text"] = self.text
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, raw: str) -> Transcript:
        data = json.loads(raw)
        utterances = [Utterance(u["text"], [Word(**w) for w in u["words"]], u["forced"])
                      for u in data["utterances"]]
        return cls(data["source"], data["language"], data["duration"], utterances)


STOP_CHECK_BYTES = FRAME_BYTES * 50  # how much audio is decoded between checks of `should_stop` (1 s)


class TranscriptionStopped(Exception):
    """The transcription was stopped before the end (the node is shutting down); nothing was written."""


def transcribe_pcm(pcm: bytes, model: vosk.Model, *, source: str, language: str, grammar: Sequence[str] | None = None,
                   max_utterance_seconds: float = 15.0,
                   should_stop: Callable[[], bool] | None = None) -> Transcript:
    """Decode 8 kHz 16-bit PCM as a call would deliver it (20 ms frames, endpointing, forced cuts).
    `should_stop` is asked after each second of audio; True raises TranscriptionStopped."""
    recognizer = StreamRecognizer(model, grammar=grammar, max_utterance_seconds=max_utterance_seconds)
    utterances = []
    for start in range(0, len(pcm), FRAME_BYTES):
        if should_stop is not None and start % STOP_CHECK_BYTES == 0 and should_stop():
            raise TranscriptionStopped(f"transcription of {source} stopped at {start // FRAME_BYTES * 0.02:.0f} s")
        utterance = recognizer.accept(pcm[start:start + FRAME_BYTES])
        if utterance is not None and utterance.text:
            utterances.append(utterance)
    last = recognizer.finish()
    if last.text:
        utterances.append(last)
    return Transcript(source, language, round(seconds(pcm), 3), utterances)


def transcribe_file(path: str | Path, *, language: str = "ko", grammar: Sequence[str] | None = None,
                    registry: ModelRegistry | None = None,
                    should_stop: Callable[[], bool] | None = None) -> Transcript:
    """Transcribe any PCM WAV (any rate: resampled to 8 kHz). AudioFileError / ModelNotFound on bad input."""
    registry = registry or default_registry()
    pcm = read_wav(path)  # bad audio is reported before seconds are spent loading a model
    model = registry.model(language)
    return transcribe_pcm(pcm, model, source=str(path), language=language, grammar=grammar,
                          max_utterance_seconds=registry.settings.max_utterance_seconds, should_stop=should_stop)


def transcript_path_for(recording: Path) -> Path:
    """Where a recording's transcript is stored by default: beside it, `call.wav` -> `call.transcript.json`."""
    return recording.with_suffix(".transcript.json")


class TranscriptJobs:
    """Background transcription of recorded calls, one at a time.

    The queue is in memory: whoever needs jobs to survive a restart keeps them elsewhere and submits them
    again (the node keeps them in its journal). `shutdown` is prompt for that reason: queued jobs are
    dropped and the running one stops within a second of audio (TranscriptionStopped, no file written)."""

    def __init__(self, registry: ModelRegistry | None = None) -> None:
        self.registry = registry or default_registry()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-transcript")
        self._stopping = threading.Event()

    def submit(self, recording: str | Path, *, language: str = "ko", output: str | Path | None = None,
               on_done: Callable[[Transcript, Path], None] | None = None,
               on_error: Callable[[Path, Exception], None] | None = None) -> Future[Path]:
        """Queue a recording; the Future gives the JSON file written (default: beside the recording).
        `on_done(transcript, json_path)` / `on_error(recording, exc)` run on the job's thread."""
        recording = Path(recording)
        target = Path(output) if output else transcript_path_for(recording)
        return self._executor.submit(self._run, recording, language, target, on_done, on_error)

    def _run(self, recording: Path, language: str, target: Path,
             on_done: Callable[[Transcript, Path], None] | None,
             on_error: Callable[[Path, Exception], None] | None) -> Path:
        try:
            transcript = transcribe_file(recording, language=language, registry=self.registry,
                                         should_stop=self._stopping.is_set)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(target.name + ".tmp")
            staging.write_text(transcript.to_json(), encoding="utf-8")
            staging.replace(target)  # readers never see a half-written transcript
        except TranscriptionStopped:
            log.info("transcript of %s stopped by shutdown; left for the next start", recording)
            raise
        except Exception as exc:
            log.warning("transcript of %s failed: %s", recording, exc)
            if on_error is not None:
                on_error(recording, exc)
            raise
        if on_done is not None:
            on_done(transcript, target)
        return target

    def shutdown(self) -> None:
        """Stop promptly: queued jobs are cancelled, the running one stops at its next check."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
