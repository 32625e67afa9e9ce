"""How many simultaneous three-party conferences one IVR node mixes in real time, and at what CPU.

    .venv/bin/python benchmarks/bench_three_way.py --conferences 10,50,100 --seconds 20

For each N: a node process (the real ivr.media.MediaEngine as the node's 20 ms media clock, a real
ivr.session.CallSession and MediaStream per leg on a loopback RTP socket, N three_way.Conference objects,
optionally recording mixed and per leg) and G load-generator processes playing the 3N phones: each phone
sends one PCMU packet of its own tone (440, 1200 or 2000 Hz) every 20 ms and receives what the node mixes
for it. SIP is left out on purpose (bench_calls.py measures call set-up): this is the mixing node's media
path, from packets in to packets out.

Counted honestly, per leg, over the measuring window (after a warm-up):
- expected: the window's length / 20 ms (the node must send one frame per leg per tick);
- delivered: packets that arrived in the window;
- on time: delivered no later than `--late-ms` (default 40) after its place on the leg's 20 ms schedule (its
  RTP timestamp, which the node keeps true to the wall clock, anchored at the leg's earliest packet);
- a leg passes when on-time >= 99 % of expected. A row passes when every leg does.
Also printed: the node's CPU (percent of one core, user+system over the window), its media ticks late, the
mixer's input frames missing (generator packets that did not arrive in time at the node), how many legs'
audio did not hold exactly the other two tones (a wrong mix under load), and the generators' own late
ticks (when they fall behind, the figures are the generators', not the node's). Nothing is asserted.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import selectors
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr import g711  # noqa: E402
from ivr.softphone.audio import tone_share  # noqa: E402

TONES = (440, 1200, 2000)  # citizen, seat, operator
FRAME = 0.020
SAMPLES = 160
RTP_HEADER = struct.Struct("!BBHII")


def tone_payloads(hz: int) -> list[bytes]:
    """One second of the tone as 50 PCMU payloads (whole periods: the phase stays continuous)."""
    t = np.arange(8000) / 8000
    pcm = (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()
    return [g711.encode_pcmu(pcm[i:i + 320]) for i in range(0, len(pcm), 320)]


# ---------------------------------------------------------------------------------------------- the node

def run_node(conn, remotes: list[tuple[str, int]], record: bool) -> None:
    """The node process: streams and conferences; sends its ports, waits for 'go', measures, reports."""
    from ivr.media import MediaEngine, MediaStream, open_rtp_socket
    from ivr.session import CallEnded, CallSession
    from recordings.wav_writer import WavRecording
    from three_way.conference import Conference

    engine = MediaEngine("bench-media")
    engine.start()
    sessions, streams = [], []
    for index, remote in enumerate(remotes):
        session = CallSession(f"leg-{index}", "caller", "12345", "PCMU", outgoing=None, hangup=lambda: None)
        stream = MediaStream(open_rtp_socket("127.0.0.1", 20000, 60000), remote, "PCMU", 101,
                             on_frame=session.deliver_frame, on_digit=session.deliver_digit,
                             on_closed=session.mark_ended)
        session.attach_output(stream)
        sessions.append(session)
        streams.append(stream)
    folder = tempfile.mkdtemp(prefix="bench-three-way-")
    conferences = []
    for first in range(0, len(sessions), 3):
        factory = None
        if record:
            factory = (lambda label, n=first: WavRecording(Path(folder) / f"c{n}-{label}.wav"))
        conference = Conference(engine, call_ended=(CallEnded,), recordings=factory, tones=False)
        for role, session in zip(("citizen", "seat", "operator"), sessions[first:first + 3]):
            conference.join(session, role=role, number=session.call_id)
        conferences.append(conference)
    for stream in streams:
        engine.add(stream)
    conn.send([stream.local_port for stream in streams])

    def missing() -> int:
        return sum(leg.stats.frames_missing for c in conferences for leg in c.view().legs if leg.stats)

    conn.recv()  # go: the window starts
    started, cpu_start, late_start, missing_start = time.monotonic(), os.times(), engine.ticks_late, missing()
    conn.recv()  # stop: the window ends
    cpu_end, elapsed = os.times(), time.monotonic() - started
    cpu = (cpu_end.user - cpu_start.user + cpu_end.system - cpu_start.system) / elapsed * 100
    input_missing = missing() - missing_start
    for conference in conferences:
        conference.end("benchmark over")
    engine.stop()
    conn.send({"cpu": cpu, "ticks_late": engine.ticks_late - late_start, "input_missing": input_missing})


# ---------------------------------------------------------------------------------------------- the phones

def run_phones(conn, legs: list[int], seconds: float, warmup: float, late_ms: float) -> None:
    """A generator process: phones for `legs` (global leg indexes); sends bound addresses, gets the node's
    ports, plays until the end, reports per-leg counts."""
    payloads = {hz: tone_payloads(hz) for hz in TONES}
    sockets = []
    for _ in legs:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sockets.append(sock)
    conn.send([sock.getsockname() for sock in sockets])
    ports = conn.recv()
    selector = selectors.DefaultSelector()
    for position, sock in enumerate(sockets):
        selector.register(sock, selectors.EVENT_READ, position)
    arrivals: list[list[tuple[int, float]]] = [[] for _ in legs]
    audio: list[bytearray] = [bytearray() for _ in legs]
    conn.recv()  # go
    start = time.monotonic()
    window = (start + warmup, start + seconds)
    sequence, late_ticks, tick = 0, 0, 0
    next_tick = start
    while True:
        now = time.monotonic()
        if now >= window[1] + 0.2:
            break
        if now >= next_tick:
            if now - next_tick > FRAME:
                late_ticks += 1
            for position, sock in enumerate(sockets):
                hz = TONES[legs[position] % 3]
                header = RTP_HEADER.pack(0x80, 0, sequence & 0xFFFF, (sequence * SAMPLES) & 0xFFFFFFFF,
                                         legs[position])
                try:
                    sock.sendto(header + payloads[hz][tick % 50], ("127.0.0.1", ports[legs[position]]))
                except OSError:
                    pass
            sequence += 1
            tick += 1
            next_tick += FRAME
            continue
        for key, _ in selector.select(max(0.0, next_tick - time.monotonic())):
            sock, position = key.fileobj, key.data
            while True:
                try:
                    datagram = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                arrived = time.monotonic()
                if window[0] <= arrived <= window[1]:
                    timestamp = RTP_HEADER.unpack_from(datagram)[3]
                    arrivals[position].append((timestamp, arrived))
                    if len(audio[position]) < 8000 * 2 * 2:  # two seconds for the tone check
                        audio[position] += g711.decode_pcmu(datagram[12:])
    results = []
    expected = int((window[1] - window[0]) / FRAME)
    for position, leg in enumerate(legs):
        received = arrivals[position]
        on_time = 0
        if received:  # the node's RTP timestamps follow the wall clock (frames it skipped advance them too)
            first_ts, first_at = min(received, key=lambda item: item[1] - ((item[0] - received[0][0]) & 0xFFFFFFFF)
                                     / 8000)
            for timestamp, at in received:
                place = first_at + ((timestamp - first_ts) & 0xFFFFFFFF) / 8000
                on_time += at - place <= late_ms / 1000
        own = TONES[leg % 3]
        pcm = bytes(audio[position])
        mix_right = tone_share(pcm, own) < 0.01 and all(tone_share(pcm, hz) > 0.2 for hz in TONES if hz != own)
        results.append({"leg": leg, "expected": expected, "delivered": len(received), "on_time": on_time,
                        "mix_right": mix_right})
    conn.send({"legs": results, "late_ticks": late_ticks})


# ---------------------------------------------------------------------------------------------- a run

def measure(conferences: int, seconds: float, warmup: float, generators: int, late_ms: float,
            record: bool) -> dict:
    context = mp.get_context("fork")
    legs = list(range(conferences * 3))
    shares = [legs[i::generators] for i in range(generators)]
    phone_pipes, phone_procs = [], []
    remotes: list[tuple[str, int] | None] = [None] * len(legs)
    for share in shares:
        parent, child = context.Pipe()
        proc = context.Process(target=run_phones, args=(child, share, seconds, warmup, late_ms), daemon=True)
        proc.start()
        for leg, address in zip(share, parent.recv()):
            remotes[leg] = tuple(address)
        phone_pipes.append(parent)
        phone_procs.append(proc)
    node_parent, node_child = context.Pipe()
    node = context.Process(target=run_node, args=(node_child, remotes, record), daemon=True)
    node.start()
    ports = node_parent.recv()
    for pipe in phone_pipes:
        pipe.send(ports)
    for pipe in phone_pipes:
        pipe.send("go")
    time.sleep(warmup)
    node_parent.send("go")
    time.sleep(seconds - warmup)
    node_parent.send("stop")
    phone_results = [pipe.recv() for pipe in phone_pipes]
    node_result = node_parent.recv()
    for proc in (*phone_procs, node):
        proc.join(10)
    legs_out = [leg for result in phone_results for leg in result["legs"]]
    return {"conferences": conferences, "node": node_result, "legs": legs_out,
            "generator_late_ticks": sum(result["late_ticks"] for result in phone_results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", default="5,20,50", help="comma-separated N (three legs each)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each run, warm-up included")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--generators", type=int, default=2, help="load-generator processes playing the phones")
    parser.add_argument("--late-ms", type=float, default=40.0, help="on time: at most this late on its schedule")
    parser.add_argument("--record", action="store_true", help="also write the mixed and per-leg WAV recordings")
    args = parser.parse_args(argv)
    if args.seconds <= args.warmup:
        parser.error("--seconds must be longer than --warmup")
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; recordings "
          f"{'on' if args.record else 'off'}; on time = at most {args.late_ms:g} ms late")
    print(f"{'conf':>5} {'legs':>5} {'node CPU':>9} {'ticks late':>10} {'expected':>9} {'delivered':>10} "
          f"{'on time':>8} {'legs>=99%':>10} {'worst leg':>10} {'wrong mix':>9} {'input miss':>10} {'gen late':>8}")
    for conferences in (int(n) for n in args.conferences.split(",")):
        run = measure(conferences, args.seconds, args.warmup, args.generators, args.late_ms, args.record)
        legs = run["legs"]
        expected = sum(leg["expected"] for leg in legs)
        delivered = sum(leg["delivered"] for leg in legs)
        on_time = sum(leg["on_time"] for leg in legs)
        passing = sum(leg["on_time"] >= 0.99 * leg["expected"] for leg in legs)
        worst = min(leg["on_time"] / leg["expected"] for leg in legs)
        print(f"{conferences:>5} {len(legs):>5} {run['node']['cpu']:>8.1f}% {run['node']['ticks_late']:>10} "
              f"{expected:>9} {delivered:>10} {on_time / expected:>7.2%} {passing:>4}/{len(legs):<5} "
              f"{worst:>9.2%} {sum(not leg['mix_right'] for leg in legs):>9} {run['node']['input_missing']:>10} "
              f"{run['generator_late_ticks']:>8}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
