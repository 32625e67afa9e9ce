"""ASR speed on this machine: model load, one stream's real-time factor, threads vs processes, and how many
simultaneous real-time 8 kHz streams the worker pool sustains.

Prints:
- model load: seconds and resident memory added by loading the Korean model (once per process);
- real-time factor (CPU-bound decode time / audio time) of one free-speech stream (words on, partials read
  once per 20 ms frame as a call would) and of one grammar stream, fed 20 ms frames of 8 kHz 16-bit PCM;
- aggregate throughput (x real time) of 1 and 2 threads sharing one model vs 2 forked processes;
- for each N in --streams (free speech) and --grammar-streams (menu answers): N streams fed in real time (20 ms per tick) through asr.RecognitionPool
  for --seconds; the highest backlog and the lag from the last frame fed to the last result. A count is
  "sustained" when the lag stays under 1 s (the backlog drains as fast as audio arrives).

Speech is espeak-ng Korean (the same sentence repeated, pauses kept), run through G.711 mu-law.
Usage: .venv/bin/python benchmarks/bench_asr.py [--seconds 15] [--streams 2,4,8] [--grammar-streams 8,16]
Figures on a shared, loaded machine are noisy: compare runs taken under the same load.
"""

from __future__ import annotations

import argparse
import audioop
import multiprocessing
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from asr.models import configure
from asr.pool import RecognitionPool
from asr.settings import AsrSettings
from pcm import FRAME_BYTES, frames, read_wav
from asr.recognizer import StreamRecognizer

SENTENCE = "안녕하세요 민원을 신청하고 싶습니다 도로에 구멍이 있어요 빨리 고쳐 주세요"
GRAMMAR = ["네", "아니요", "민원", "구", "칠"]


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def speech(seconds: float, workdir: Path) -> bytes:
    wav = workdir / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "ko", SENTENCE, "-w", str(wav)], check=True)
    pcm = audioop.ulaw2lin(audioop.lin2ulaw(read_wav(wav), 2), 2)
    needed = int(seconds * 16000)
    return (pcm * (needed // len(pcm) + 1))[:needed // FRAME_BYTES * FRAME_BYTES]


def decode_seconds(model, pcm: bytes, grammar=None) -> float:
    """Wall time to decode `pcm` as a call does (frame by frame, partial read per frame)."""
    recognizer = StreamRecognizer(model, grammar=grammar)
    started = time.perf_counter()
    for frame in frames(pcm):
        recognizer.accept(frame)
        recognizer.partial()
    recognizer.finish()
    return time.perf_counter() - started


def throughput_threads(model, pcm: bytes, n: int) -> float:
    """Audio seconds decoded per wall second by n threads, each decoding `pcm`."""
    threads = [threading.Thread(target=decode_seconds, args=(model, pcm)) for _ in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n * len(pcm) / 16000 / (time.perf_counter() - started)


_forked_model = None


def _decode_in_child(pcm: bytes) -> float:
    return decode_seconds(_forked_model, pcm)


def throughput_processes(model, pcm: bytes, n: int) -> float:
    """The same with n forked processes (the loaded model shared copy-on-write)."""
    global _forked_model
    _forked_model = model
    with multiprocessing.get_context("fork").Pool(n) as pool:
        started = time.perf_counter()
        pool.map(_decode_in_child, [pcm] * n)
        return n * len(pcm) / 16000 / (time.perf_counter() - started)


def realtime_streams(pool: RecognitionPool, pcm: bytes, n: int, grammar=None) -> tuple[int, float]:
    """Feed n streams one 20 ms frame each per tick, on the clock; return (max backlog frames, final lag s)."""
    streams = [pool.open_stream("ko", grammar=grammar) for _ in range(n)]
    pool.reset_max_backlog()  # the highest backlog of this run only
    started = time.perf_counter()
    for i, frame in enumerate(frames(pcm)):
        for stream in streams:
            stream.feed(frame)
        delay = started + (i + 1) * 0.02 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    fed_at = time.perf_counter()
    for stream in streams:
        stream.close()
    for stream in streams:
        stream.closed.wait()
    lag = time.perf_counter() - fed_at
    return pool.metrics().max_backlog_frames, lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="audio per stream in the real-time runs")
    parser.add_argument("--streams", default="1,2,4,8", help="free-speech stream counts to try in real time")
    parser.add_argument("--grammar-streams", default="8,16", help="grammar stream counts to try in real time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        registry = configure(AsrSettings(models_dir=workdir / "models", cache_dir=workdir / "cache"))
        print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f} (machine shared: noisy)")
        rss = resident_mb()
        started = time.perf_counter()
        model = registry.model("ko")
        print(f"model load: {time.perf_counter() - started:.2f} s (checksums + overlay + load), "
              f"+{resident_mb() - rss:.0f} MB resident")

        pcm = speech(10.0, workdir)
        decode_seconds(model, pcm)  # warm the graph caches
        audio = len(pcm) / 16000
        cpu = time.process_time()
        wall = decode_seconds(model, pcm)
        print(f"RTF one stream, free speech: {wall / audio:.3f} wall, {(time.process_time() - cpu) / audio:.3f} CPU")
        print(f"RTF one stream, grammar:     {decode_seconds(model, pcm, GRAMMAR) / audio:.3f}")
        for n in (1, 2):
            print(f"threads={n}: {throughput_threads(model, pcm, n):.1f}x real time (shared model)")
        print(f"processes=2: {throughput_processes(model, pcm, 2):.1f}x real time (forked, model shared COW)")

        pool = RecognitionPool(registry)
        long_pcm = speech(args.seconds, workdir)
        runs = [(int(n), None) for n in args.streams.split(",") if n]
        runs += [(int(n), GRAMMAR) for n in args.grammar_streams.split(",") if n]
        for n, grammar in runs:
            backlog, lag = realtime_streams(pool, long_pcm, n, grammar)
            verdict = "sustained" if lag < 1.0 else "NOT sustained"
            kind = "grammar" if grammar else "free-speech"
            print(f"{n:3d} real-time {kind} streams x {args.seconds:.0f} s: max backlog {backlog} frames "
                  f"({backlog * 0.02:.1f} s of audio), lag after last frame {lag:.2f} s -> {verdict}")
        pool.shutdown()


if __name__ == "__main__":
    main()
