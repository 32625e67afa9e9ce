"""Recognition work off the call's audio thread: a pool of worker threads shared by all live streams.

Threads, not processes: Vosk's AcceptWaveform releases the GIL, so threads sharing one loaded model (~0.5 GB)
use both cores, where processes would each need their own copy of the model (or a fork sharing it
copy-on-write, which the call process cannot safely do once it runs threads). benchmarks/bench_asr.py on the
2-core machine (2026-12-02 06:25 UTC, shared, load 4.9): 1 thread 6.5x real time, 2 threads 13.9x, 2 forked processes
13.0x. The Kaldi abort that would take the call process down (SetGrammar after audio) cannot happen here:
StreamRecognizer fixes its grammar at construction and never calls SetGrammar.

What did cap live speech was a new Vosk recogniser per answer: this model composes its decoding graph lazily
inside each recogniser, so a new one per answer cost 0.335 CPU s per audio s against 0.072 for recognisers
kept between answers (asr.warm, bench_asr's "answer by answer" line). The pool keeps them
(`AsrSettings.warm_recognizers`) and `warm_up` fills them at start.

`Stream.feed` only appends to the stream's queue and never waits for recognition; audio is handed to a worker
in batches of BATCH_FRAMES (100 ms: one wake-up per batch, not per frame). When every worker is busy audio
waits in the queue (never dropped) and `PoolMetrics.backlog_frames` / `lag_seconds` show how much.

Capacity: the node knows how many real-time free-speech streams its recognisers decode at once
(`AsrSettings.realtime_streams`, measured by benchmarks/bench_asr.py; a grammar stream costs GRAMMAR_COST of
one). `try_open_stream` refuses a new stream when it would exceed that, or when audio already waits longer
than `AsrSettings.max_lag_seconds` (the machine is slower than the figure says): the caller is then served
another way (keys) instead of every caller waiting for a recogniser.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import vosk

from pcm import FRAME_BYTES, frames, seconds
from .models import ModelRegistry, default_registry
from .recognizer import StreamRecognizer, match_phrase
from .results import Utterance
from .settings import AsrSettings
from .warm import WarmRecognizers

log = logging.getLogger(__name__)

BATCH_FRAMES = 5  # audio goes to a worker 100 ms at a time (close() sends what is left at once)
GRAMMAR_COST = 0.25  # a grammar stream's share of a free-speech stream's decoding cost (bench_asr: ~0.1-0.2)


@dataclass(frozen=True)
class PoolMetrics:
    workers: int
    capacity: float            # real-time free-speech streams the node decodes at once (grammar: GRAMMAR_COST)
    load: float                # open streams weighted by their cost, in the same unit
    open_streams: int
    backlog_frames: int        # 20 ms frames fed but not yet recognised, all streams
    max_backlog_frames: int    # the highest backlog seen since the pool started (or reset_max_backlog)
    lag_seconds: float         # how long the oldest audio not yet recognised has waited
    max_lag_seconds: float     # the longest such wait seen (same window as max_backlog_frames)
    frames_recognised: int
    refused: int               # streams refused by try_open_stream since start (at capacity or lagging)
    warm_idle: int             # free-speech recognisers kept warm and waiting (asr.warm; the start's warm-up)

    def to_dict(self) -> dict[str, float | int]:
        return {name: round(value, 3) if isinstance(value, float) else value
                for name, value in self.__dict__.items()}


class Stream:
    """One caller's audio on its way to a recogniser. Results arrive through `on_utterance` (called on a
    worker thread) or, without a callback, through `next_utterance`."""

    def __init__(self, pool: RecognitionPool, recognizer: StreamRecognizer,
                 on_utterance: Callable[[Utterance], None] | None,
                 on_partial: Callable[[str], None] | None, cost: float = 1.0) -> None:
        self._pool = pool
        self._recognizer = recognizer
        self._on_utterance = on_utterance
        self._on_partial = on_partial
        self._last_partial = ""
        self.cost = cost
        self._pending: deque[bytes | None] = deque()  # None marks close()
        self._pending_bytes = 0
        self._pending_since: float | None = None  # when the oldest audio not yet recognised was fed
        self._lock = threading.Lock()
        self._scheduled = False
        self._closing = False
        self._discard = False
        self._results: queue.Queue[Utterance | None] = queue.Queue()
        self.closed = threading.Event()

    @property
    def grammar(self) -> tuple[str, ...] | None:
        return self._recognizer.grammar

    @property
    def backlog_frames(self) -> int:
        with self._lock:
            return self._pending_bytes // FRAME_BYTES

    def lag(self, now: float) -> float:
        """Seconds the oldest audio not yet recognised has waited (0 when none waits)."""
        since = self._pending_since
        return now - since if since is not None else 0.0

    def feed(self, pcm: bytes) -> None:
        """Queue audio (any length; normally one 20 ms frame) for recognition. Never blocks; audio fed
        after close() is ignored (a media thread may deliver one more frame after the hang-up)."""
        self._enqueue(pcm)

    def close(self) -> None:
        """No more audio: the rest is recognised and its final Utterance delivered, then `closed` is set."""
        self._enqueue(None)

    def cancel(self) -> None:
        """The answer is no longer wanted (a key was pressed, the caller hung up, or its words came too late
        and the caller went on without them): audio not yet recognised is dropped, a worker decoding it stops
        at the next frame, no result is delivered, the recogniser's capacity is given back when the worker is
        done. Also after close(): an abandoned answer must not keep a recogniser busy for nobody."""
        with self._lock:
            if self._discard:
                return
            self._discard = True
            dropped, self._pending_bytes = self._pending_bytes, 0
            end_queued = None in self._pending  # close() came and no worker has taken it yet
            self._pending.clear()
            self._pending_since = None
            if end_queued:
                self._pending.append(None)
        self._pool._backlog_changed(-dropped)
        self._enqueue(None)  # ignored when close() came first

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
                self._pending_bytes += len(item)
                if self._pending_since is None:
                    self._pending_since = time.monotonic()
            schedule = not self._scheduled and (item is None or self._pending_bytes >= BATCH_FRAMES * FRAME_BYTES)
            if schedule:
                self._scheduled = True
        if item:
            self._pool._backlog_changed(len(item))
        if schedule:
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
                self._pending_bytes = 0
                waited = self._pending_since
                self._pending_since = None
            audio = b"".join(item for item in items if item)
            recognised = 0
            try:
                if audio:
                    recognised = self._recognise(audio)
                if None in items:
                    final = self._recognizer.finish()
                    self._recognizer.release()  # a kept recogniser goes back before the result is handed on
                    if not self._discard:
                        self._deliver(final)
                    self._results.put(None)
            except Exception:  # a callback's bug must not kill the worker or other streams
                log.exception("recognition stream failed")
            finally:
                self._pool._backlog_changed(-len(audio), recognised=recognised, waited_since=waited)
                if None in items:
                    self._pool._stream_closed(self)
                    self.closed.set()

    def _recognise(self, audio: bytes) -> int:
        """Decode `audio`; returns the bytes decoded (fewer when the stream was cancelled meanwhile)."""
        # Fed frame by frame so an endpoint inside a long backlog is reported at the right place.
        for start in range(0, len(audio), FRAME_BYTES):
            if self._discard:
                return start
            utterance = self._recognizer.accept(audio[start:start + FRAME_BYTES])
            if utterance is not None and not self._discard:
                self._deliver(utterance)
        if self._on_partial is not None and not self._discard:
            partial = self._recognizer.partial()
            if partial and partial != self._last_partial:
                self._last_partial = partial
                self._on_partial(partial)
        return len(audio)

    def _deliver(self, utterance: Utterance) -> None:
        if not utterance.text and not utterance.words:
            return
        if self._on_utterance is not None:
            self._on_utterance(utterance)
        else:
            self._results.put(utterance)


class RecognitionPool:
    """Worker threads (one per core by default) recognising every open stream of this process."""

    def __init__(self, registry: ModelRegistry | None = None, settings: AsrSettings | None = None) -> None:
        """`settings`: the pool's own (workers, capacity, recognisers kept), default the registry's."""
        self.registry = registry or default_registry()
        self.settings: AsrSettings = settings or self.registry.settings
        self._executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="asr")
        self.warm = WarmRecognizers(self.settings.warm_recognizers)
        self._lock = threading.Lock()
        self._streams: set[Stream] = set()
        self._load = 0.0
        self._backlog = 0  # all counters in bytes of audio
        self._max_backlog = 0
        self._max_lag = 0.0
        self._recognised = 0
        self._refused = 0

    def preload(self, languages: Sequence[str] | None = None) -> None:
        """Load models now (seconds each) rather than on the first call that needs them."""
        for language in languages or self.registry.available_languages():
            self.registry.model(language)

    def warm_up(self, language: str, speech: bytes) -> threading.Thread:
        """Decode `speech` (a few seconds in `language`) once through each recogniser kept warm, on one
        background thread (at most one core, live calls answered meanwhile), so the first callers after a start
        do not each pay a new recogniser's cost (about 4x, asr.warm). Returns the thread (join it to wait).

        Normal priority on purpose: a thread at a low OS priority that the scheduler pauses while it holds the
        interpreter lock would stall every thread of the node, the media thread included."""
        model = self.registry.model(language)
        thread = threading.Thread(target=self._warm_up, args=(model, speech), name=f"asr-warm-up-{language}",
                                  daemon=True)
        thread.start()
        return thread

    def _warm_up(self, model: vosk.Model, speech: bytes) -> None:
        started = time.monotonic()
        recognisers = [StreamRecognizer(model, warm=self.warm) for _ in range(self.settings.warm_recognizers)]
        for recogniser in recognisers:
            for frame in frames(speech):
                recogniser.accept(frame)
            recogniser.finish()
        for recogniser in recognisers:
            recogniser.release()
        log.info("%d recognisers warmed on %.1f s of speech in %.1f s", len(recognisers), seconds(speech),
                 time.monotonic() - started)

    def open_stream(self, language: str, *, grammar: Sequence[str] | None = None,
                    on_utterance: Callable[[Utterance], None] | None = None,
                    on_partial: Callable[[str], None] | None = None) -> Stream:
        """A new stream with its own recogniser (open one per prompt for grammar answers), whatever the load
        (background work, benchmarks). Raises ModelNotFound for a language without a model."""
        stream = self._new_stream(language, grammar, on_utterance, on_partial)
        with self._lock:
            self._add(stream)
        return stream

    def try_open_stream(self, language: str, *, grammar: Sequence[str] | None = None,
                        on_utterance: Callable[[Utterance], None] | None = None,
                        on_partial: Callable[[str], None] | None = None) -> Stream | None:
        """Like open_stream for a live caller, or None when the recognisers are at capacity (its cost would
        exceed `realtime_streams`) or audio already waits longer than `max_lag_seconds`."""
        cost = GRAMMAR_COST if grammar else 1.0
        with self._lock:  # reserve first: a refused caller costs no recogniser
            lagging = self._lag_locked(time.monotonic()) > self.settings.max_lag_seconds
            if lagging or self._load + cost > self.settings.realtime_streams + 1e-9:
                self._refused += 1
                return None
            self._load += cost
        try:
            stream = self._new_stream(language, grammar, on_utterance, on_partial)
        except BaseException:
            with self._lock:
                self._load -= cost
            raise
        with self._lock:
            self._streams.add(stream)
        return stream

    def _new_stream(self, language: str, grammar: Sequence[str] | None,
                    on_utterance: Callable[[Utterance], None] | None,
                    on_partial: Callable[[str], None] | None) -> Stream:
        recognizer = StreamRecognizer(self.registry.model(language), grammar=grammar,
                                      max_utterance_seconds=self.settings.max_utterance_seconds, warm=self.warm)
        return Stream(self, recognizer, on_utterance, on_partial, cost=GRAMMAR_COST if grammar else 1.0)

    def _add(self, stream: Stream) -> None:
        self._streams.add(stream)
        self._load += stream.cost

    def _lag_locked(self, now: float) -> float:
        return max((stream.lag(now) for stream in self._streams), default=0.0)

    def metrics(self) -> PoolMetrics:
        with self._lock:
            lag = self._lag_locked(time.monotonic())
            return PoolMetrics(self.settings.workers, float(self.settings.realtime_streams), self._load,
                               len(self._streams), self._backlog // FRAME_BYTES, self._max_backlog // FRAME_BYTES,
                               lag, max(self._max_lag, lag), self._recognised // FRAME_BYTES, self._refused,
                               self.warm.idle)

    def reset_max_backlog(self) -> None:
        """Start a new observation window for `max_backlog_frames` and `max_lag_seconds` (e.g. per run)."""
        with self._lock:
            self._max_backlog = self._backlog
            self._max_lag = 0.0

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    def _submit(self, job: Callable[[], None]) -> None:
        self._executor.submit(job)

    def _backlog_changed(self, delta_bytes: int, recognised: int = 0, waited_since: float | None = None) -> None:
        with self._lock:
            self._backlog += delta_bytes
            self._max_backlog = max(self._max_backlog, self._backlog)
            self._recognised += recognised
            if waited_since is not None:
                self._max_lag = max(self._max_lag, time.monotonic() - waited_since)

    def _stream_closed(self, stream: Stream) -> None:
        with self._lock:
            if stream in self._streams:
                self._streams.discard(stream)
                self._load = max(0.0, self._load - stream.cost)
