"""Recognition work off the call's audio thread: a pool of worker threads shared by all live streams.

Threads, not processes: Vosk's AcceptWaveform releases the GIL, so threads sharing one loaded model (~0.5 GB)
use both cores, where processes would each need their own copy of the model (or a fork sharing it
copy-on-write, which the call process cannot safely do once it runs threads). benchmarks/bench_asr.py measured
on the shared, loaded 2-core machine (2026-11-29 01:45 UTC, load ~2.2): free speech 1 thread 1.3x real time,
2 threads 1.8x, 2 forked processes 1.9x — threads within measuring noise of processes. The Kaldi abort that would take the call process down (SetGrammar after audio) cannot happen here:
StreamRecognizer fixes its grammar at construction and never calls SetGrammar.

`Stream.feed` only appends to the stream's queue and never waits for recognition; when every worker is busy
audio waits in the queue (never dropped) and `PoolMetrics.backlog_frames` shows how much.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pcm import FRAME_BYTES
from .models import ModelRegistry, default_registry
from .recognizer import StreamRecognizer, match_phrase
from .results import Utterance
from .settings import AsrSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolMetrics:
    workers: int
    open_streams: int
    backlog_frames: int        # 20 ms frames fed but not yet recognised, all streams
    max_backlog_frames: int    # the highest backlog seen since the pool started
    frames_recognised: int


class Stream:
    """One caller's audio on its way to a recogniser. Results arrive through `on_utterance` (called on a
    worker thread) or, without a callback, through `next_utterance`."""

    def __init__(self, pool: RecognitionPool, recognizer: StreamRecognizer,
                 on_utterance: Callable[[Utterance], None] | None,
                 on_partial: Callable[[str], None] | None) -> None:
        self._pool = pool
        self._recognizer = recognizer
        self._on_utterance = on_utterance
        self._on_partial = on_partial
        self._pending: deque[bytes | None] = deque()  # None marks close()
        self._lock = threading.Lock()
        self._scheduled = False
        self._closing = False
        self._results: queue.Queue[Utterance | None] = queue.Queue()
        self.closed = threading.Event()

    @property
    def grammar(self) -> tuple[str, ...] | None:
        return self._recognizer.grammar

    @property
    def backlog_frames(self) -> int:
        with self._lock:
            return sum(len(chunk) for chunk in self._pending if chunk) // FRAME_BYTES

    def feed(self, pcm: bytes) -> None:
        """Queue audio (any length; normally one 20 ms frame) for recognition. Never blocks; audio fed
        after close() is ignored (a media thread may deliver one more frame after the hang-up)."""
        self._enqueue(pcm)

    def close(self) -> None:
        """No more audio: the rest is recognised and its final Utterance delivered, then `closed` is set."""
        self._enqueue(None)

    def next_utterance(self, timeout: float | None = None) -> Utterance | None:
        """Wait for the next final Utterance (only without on_utterance); None on timeout or after close."""
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    def phrase(self, utterance: Utterance, threshold: float | None = None) -> str | None:
        """For a grammar stream: the phrase understood in `utterance`, or None (ask again)."""
        if self.grammar is None:
            raise ValueError("phrase() needs a stream opened with a grammar")
        threshold = self._pool.settings.grammar_confidence if threshold is None else threshold
        return match_phrase(utterance, self.grammar, threshold)

    def _enqueue(self, item: bytes | None) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = item is None
            self._pending.append(item)
            if item:
                self._pool._backlog_changed(len(item))
            if not self._scheduled:
                self._scheduled = True
                self._pool._submit(self._drain)

    def _drain(self) -> None:
        """Runs on a worker: recognise everything queued, in order; only one worker per stream at a time."""
        while True:
            with self._lock:
                if not self._pending:
                    self._scheduled = False
                    return
                items = list(self._pending)
                self._pending.clear()
            audio = b"".join(item for item in items if item)
            try:
                if audio:
                    self._recognise(audio)
                if None in items:
                    self._deliver(self._recognizer.finish())
                    self._results.put(None)
                    self._pool._stream_closed(self)
                    self.closed.set()
            except Exception:  # a callback's bug must not kill the worker or other streams
                log.exception("recognition stream failed")
            finally:
                self._pool._backlog_changed(-len(audio), recognised=len(audio))

    def _recognise(self, audio: bytes) -> None:
        # Fed frame by frame so an endpoint inside a long backlog is reported at the right place.
        for start in range(0, len(audio), FRAME_BYTES):
            utterance = self._recognizer.accept(audio[start:start + FRAME_BYTES])
            if utterance is not None:
                self._deliver(utterance)
        if self._on_partial is not None:
            self._on_partial(self._recognizer.partial())

    def _deliver(self, utterance: Utterance) -> None:
        if not utterance.text and not utterance.words:
            return
        if self._on_utterance is not None:
            self._on_utterance(utterance)
        else:
            self._results.put(utterance)


class RecognitionPool:
    """Worker threads (one per core by default) recognising every open stream of this process."""

    def __init__(self, registry: ModelRegistry | None = None) -> None:
        self.registry = registry or default_registry()
        self.settings: AsrSettings = self.registry.settings
        self._executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="asr")
        self._lock = threading.Lock()
        self._streams: set[Stream] = set()
        self._backlog = 0  # all counters in bytes of audio
        self._max_backlog = 0
        self._recognised = 0

    def preload(self, languages: Sequence[str] | None = None) -> None:
        """Load models now (seconds each) rather than on the first call that needs them."""
        for language in languages or self.registry.available_languages():
            self.registry.model(language)

    def open_stream(self, language: str, *, grammar: Sequence[str] | None = None,
                    on_utterance: Callable[[Utterance], None] | None = None,
                    on_partial: Callable[[str], None] | None = None) -> Stream:
        """A new stream with its own recogniser (open one per prompt for grammar answers). Raises
        ModelNotFound for a language without a model."""
        recognizer = StreamRecognizer(self.registry.model(language), grammar=grammar,
                                      max_utterance_seconds=self.settings.max_utterance_seconds)
        stream = Stream(self, recognizer, on_utterance, on_partial)
        with self._lock:
            self._streams.add(stream)
        return stream

    def metrics(self) -> PoolMetrics:
        with self._lock:
            return PoolMetrics(self.settings.workers, len(self._streams), self._backlog // FRAME_BYTES,
                               self._max_backlog // FRAME_BYTES, self._recognised // FRAME_BYTES)

    def reset_max_backlog(self) -> None:
        """Start a new observation window for `max_backlog_frames` (e.g. per benchmark run)."""
        with self._lock:
            self._max_backlog = self._backlog

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    def _submit(self, job: Callable[[], None]) -> None:
        self._executor.submit(job)

    def _backlog_changed(self, delta_bytes: int, recognised: int = 0) -> None:
        with self._lock:
            self._backlog += delta_bytes
            self._max_backlog = max(self._max_backlog, self._backlog)
            self._recognised += recognised

    def _stream_closed(self, stream: Stream) -> None:
        with self._lock:
            self._streams.discard(stream)
