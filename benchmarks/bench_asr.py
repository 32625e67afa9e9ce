"""ASR speed on this machine: model load, real-time factor, threads vs processes, and how many simultaneous
real-time callers the recognisers sustain, on several different utterances.

    .venv/bin/python benchmarks/bench_asr.py [--seconds 30] [--streams 4,8,12] [--grammar-streams 16,32]

Audio: the test set of benchmarks/bench_decoder.py (var/asr-testset: a dozen Korean request sentences and
the flow's menu words, two espeak-ng voices, G.711), generated when missing. Decoder settings: asr's
defaults (`AsrSettings.decoder`, chosen from bench_decoder's table).

Prints:
- model load: seconds and resident memory added by loading the Korean model (once per process);
- real-time factor (CPU seconds per audio second) of free speech and of grammar answers over the whole set;
- the same answer by answer (a recogniser per answer, as calls use them): a new recogniser each time versus
  recognisers kept between answers (asr.warm: the model's graph cache lives in the recogniser);
- aggregate throughput (x real time) of 1 and 2 threads sharing one model vs 2 forked processes;
- the warm-up a node does at start (asr.RecognitionPool.warm_up on the flow's Korean prompts), then
  for each N in --streams: N callers at once, each saying the sentences in its own order with 1.5 s pauses,
  fed in real time (20 ms per tick) through the product's path: asr.Endpointer (VAD: silence not decoded)
  and a pool stream per answer (asr.ListeningTurn), a new answer as soon as the last one ended. Printed:
  answers, the time from a caller's end of speech to its words (p50/p95/max: what a caller waits), the
  recognisers' highest backlog and lag. N is "sustained" when the p95 wait stays under 1 s and nothing
  piles up (the lag returns to under 1 s);
- the same for --grammar-streams: menu answers (one word, then 2 s of quiet) with the menu's grammar.
Figures on a shared, loaded machine are noisy: compare runs taken under the same load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.wiring import warm_up_speech  # noqa: E402
from asr.endpoint import Endpointer  # noqa: E402
from asr.models import configure  # noqa: E402
from asr.pool import RecognitionPool  # noqa: E402
from asr.recognizer import StreamRecognizer  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.turn import ListeningTurn  # noqa: E402
from asr.warm import WarmRecognizers  # noqa: E402
from callflows.bundle import load_bundle  # noqa: E402
from callflows.prompts import PromptLibrary  # noqa: E402
from benchmarks.bench_decoder import MENU_WORDS, TESTSET, build_testset  # noqa: E402
from pcm import frames, read_wav  # noqa: E402
from tts import PromptSynthesizer  # noqa: E402

PAUSE = bytes(int(1.5 * 16000))


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def feed_as_a_call(recognizer: StreamRecognizer, pcm: bytes) -> None:
    """Decode `pcm` as a call does: frame by frame, the partial read every 100 ms, then the final result."""
    for n, frame in enumerate(frames(pcm)):
        recognizer.accept(frame)
        if n % 5 == 4:
            recognizer.partial()
    recognizer.finish()


def decode_cpu(model, pcm: bytes, grammar=None) -> float:
    """CPU seconds to decode `pcm` as a call does, with one new recogniser (its construction not counted)."""
    recognizer = StreamRecognizer(model, grammar=grammar)
    started = time.process_time()
    feed_as_a_call(recognizer, pcm)
    return time.process_time() - started


def answers_cpu(model, clips: list[bytes], warm: WarmRecognizers | None) -> float:
    """CPU seconds per audio second decoding `clips` as one answer each, the recogniser's construction counted:
    a new recogniser per answer (`warm` None), or recognisers kept between answers (asr.warm)."""
    started = time.process_time()
    for clip in clips:
        recognizer = StreamRecognizer(model, warm=warm)
        feed_as_a_call(recognizer, clip)
        recognizer.release()
    return (time.process_time() - started) / (sum(map(len, clips)) / 16000)


def node_warm_up_speech() -> bytes:
    """What a node warms its recognisers on at start (app.wiring): the 12345 flow's own Korean prompts."""
    prompts = PromptLibrary(PromptSynthesizer(ROOT / "var" / "bench-asr" / "prompts"))
    bundle = load_bundle(ROOT / "callflows" / "flows" / "hotline12345.yaml")
    return warm_up_speech(prompts, bundle.flows.values(), "ko")


def throughput_threads(model, pcm: bytes, n: int) -> float:
    """Audio seconds decoded per wall second by n threads, each decoding `pcm`."""
    threads = [threading.Thread(target=decode_cpu, args=(model, pcm)) for _ in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n * len(pcm) / 16000 / (time.perf_counter() - started)


_forked_model = None


def _decode_in_child(pcm: bytes) -> float:
    return decode_cpu(_forked_model, pcm)


def throughput_processes(model, pcm: bytes, n: int) -> float:
    """The same with n forked processes (the loaded model shared copy-on-write)."""
    global _forked_model
    _forked_model = model
    with multiprocessing.get_context("fork").Pool(n) as pool:
        started = time.perf_counter()
        pool.map(_decode_in_child, [pcm] * n)
        return n * len(pcm) / 16000 / (time.perf_counter() - started)


class Caller:
    """One simulated caller: its audio, and the answers it is giving, one ListeningTurn at a time."""

    def __init__(self, pool: RecognitionPool, audio: bytes, grammar, end_silence: float) -> None:
        self.pool, self.frames, self.grammar, self.end_silence = pool, frames(audio), grammar, end_silence
        self.turn = self._new_turn()
        self.waits: list[float] = []
        self._collectors: list[threading.Thread] = []

    def _new_turn(self) -> ListeningTurn:
        endpointer = Endpointer(timeout=30, end_silence=self.end_silence, max_length=20)
        return ListeningTurn(endpointer, self.pool.open_stream("ko", grammar=self.grammar), result_timeout=120)

    def feed(self, index: int) -> None:
        self.turn.feed(self.frames[index % len(self.frames)])
        if self.turn.finished:
            ended, turn = time.perf_counter(), self.turn
            collector = threading.Thread(target=self._collect, args=(turn, ended), daemon=True)
            collector.start()
            self._collectors.append(collector)
            self.turn = self._new_turn()

    def _collect(self, turn: ListeningTurn, ended: float) -> None:
        turn.result()
        self.waits.append(time.perf_counter() - ended)

    def finish(self) -> None:
        self.turn.cancel()
        for collector in self._collectors:
            collector.join(120)


def realtime_callers(pool: RecognitionPool, audios: list[bytes], n: int, seconds: float, grammar=None,
                     end_silence: float = 1.0) -> dict:
    callers = [Caller(pool, audios[i % len(audios)], grammar, end_silence) for i in range(n)]
    pool.reset_max_backlog()
    lags = []
    started = time.perf_counter()
    ticks = int(seconds / 0.02)
    for i in range(ticks):
        for caller in callers:
            caller.feed(i)
        if i % 50 == 0:
            lags.append(pool.metrics().lag_seconds)
        delay = started + (i + 1) * 0.02 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    for caller in callers:
        caller.finish()
    waits = sorted(w for caller in callers for w in caller.waits)
    metrics = pool.metrics()
    p95 = waits[int(0.95 * (len(waits) - 1))] if waits else float("inf")
    settled = max(lags[-3:], default=0.0) < 1.0
    return {"answers": len(waits), "wait_p50": statistics.median(waits) if waits else None, "wait_p95": p95,
            "wait_max": max(waits, default=None), "max_backlog_s": metrics.max_backlog_frames * 0.02,
            "max_lag_s": metrics.max_lag_seconds, "sustained": p95 < 1.0 and settled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per caller in the real-time runs")
    parser.add_argument("--streams", default="4,8,12", help="free-speech caller counts to try in real time")
    parser.add_argument("--grammar-streams", default="16,32", help="menu-answer caller counts to try")
    args = parser.parse_args()
    items = build_testset()
    sentences = [read_wav(TESTSET / i["file"]) for i in items if i["kind"] == "sentence"]
    words = [read_wav(TESTSET / i["file"]) for i in items if i["kind"] == "menu"]
    with tempfile.TemporaryDirectory() as tmp:
        registry = configure(AsrSettings(models_dir=Path(tmp) / "models", cache_dir=Path(tmp) / "cache"))
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  cores: {os.cpu_count()}  load average: "
              f"{os.getloadavg()[0]:.2f} (machine shared: noisy)  decoder: {dict(registry.settings.decoder) or 'model default'}")
        rss = resident_mb()
        started = time.perf_counter()
        model = registry.model("ko")
        print(f"model load: {time.perf_counter() - started:.2f} s (checksums + overlay + load), "
              f"+{resident_mb() - rss:.0f} MB resident")

        free, menu = b"".join(sentences), b"".join(words)
        decode_cpu(model, sentences[0])  # warm the graph caches
        print(f"RTF free speech ({len(sentences)} sentences, {len(free) / 16000:.0f} s): "
              f"{decode_cpu(model, free) / (len(free) / 16000):.3f} CPU s per audio s")
        print(f"RTF grammar ({len(words)} menu words): "
              f"{decode_cpu(model, menu, MENU_WORDS) / (len(menu) / 16000):.3f}")
        print(f"RTF answer by answer ({len(sentences)} sentences, one answer each): a new recogniser per answer "
              f"{answers_cpu(model, sentences, None):.3f}, recognisers kept between answers (asr.warm) "
              f"{answers_cpu(model, sentences, WarmRecognizers(max_idle=1)):.3f}")
        sample = free[: 16000 * 20]
        for n in (1, 2):
            print(f"threads={n}: {throughput_threads(model, sample, n):.1f}x real time (shared model)")
        print(f"processes=2: {throughput_processes(model, sample, 2):.1f}x real time (forked, model shared COW)")

        pool = RecognitionPool(registry)
        speech, started = node_warm_up_speech(), time.perf_counter()
        pool.warm_up("ko", speech).join()
        print(f"warm-up as a node starts: {pool.warm.idle} recognisers on {len(speech) / 16000:.1f} s of the flow's "
              f"prompts in {time.perf_counter() - started:.1f} s (one background thread)", flush=True)
        runs = [(int(n), None) for n in args.streams.split(",") if n]
        runs += [(int(n), MENU_WORDS) for n in args.grammar_streams.split(",") if n]
        for n, grammar in runs:
            if grammar is None:  # each caller says the sentences in its own order, 1.5 s between answers
                audios = [b"".join(s + PAUSE for s in sentences[k:] + sentences[:k]) for k in range(len(sentences))]
                result = realtime_callers(pool, audios, n, args.seconds)
            else:
                audios = [b"".join(w + PAUSE + PAUSE for w in words[k:] + words[:k]) for k in range(len(words))]
                result = realtime_callers(pool, audios, n, args.seconds, grammar, end_silence=0.8)
            kind = "menu-answer" if grammar else "free-speech"
            print(f"{n:3d} real-time {kind} callers x {args.seconds:.0f} s: {result['answers']} answers, wait "
                  f"after end of speech p50/p95/max {result['wait_p50'] or 0:.2f}/{result['wait_p95']:.2f}/"
                  f"{result['wait_max'] or 0:.2f} s, max backlog {result['max_backlog_s']:.1f} s of audio, "
                  f"max lag {result['max_lag_s']:.2f} s -> {'sustained' if result['sustained'] else 'NOT sustained'}",
                  flush=True)
        pool.shutdown()


if __name__ == "__main__":
    main()
