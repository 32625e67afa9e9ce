"""Hold N simultaneous simulated calls against one IVR node (in its own process) and print what it costs.

    .venv/bin/python benchmarks/bench_calls.py --calls 10,50,100 --seconds 20

For each N: a fresh Kamailio on a free port, an IVR node process registered as 12345 running a probe
application, and one softphone process-side placing N calls. Every call streams audio both ways for the whole
run (caller: noise; IVR: prompts) and sends one DTMF digit
at a random moment. The IVR plays a 400 Hz prompt with barge-in; the digit cuts it and a 1000 Hz prompt
follows; the caller measures how long after its first telephone-event packet the new tone arrives
(DTMF-to-reaction latency, i.e. detection + barge-in + the send queue + the network).

Printed per N (one JSON line), every count as delivered/expected so that nothing missing goes unseen:
- calls answered, set-up time median/max;
- IVR process: CPU (percent of one core) and threads (max seen);
- caller->IVR: frames the IVR's tap got vs. 50 per second of each call (total, and the worst call);
- IVR->caller: packets the caller received vs. 50 per connected second (total, worst call), of which late
  (after their play-out time in the caller's jitter buffer) and lost (sequence gaps); "on tick" = received
  minus late, i.e. frames the caller could play on their 20 ms tick;
- the IVR engine's own accounting: ticks late (sent a frame or more behind schedule, catching up) and ticks
  and frames skipped (never sent after a stall > 200 ms: each one a 20 ms gap on every call);
- the softphone's own late media ticks and skipped frames (it shares the machine: caller->IVR frames it never
  sent are missing for the caller's reasons, not the IVR's), and DTMF reaction latency p50/p95/max.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.local_sip_server import LocalSipServer  # noqa: E402

IVR_EXTENSION = "12345"
CALLER_EXTENSION = "1001"
LOW_HZ, HIGH_HZ = 400, 1000
FRAME_SAMPLES = 160


def tone_frame(hz: int) -> bytes:
    t = np.arange(FRAME_SAMPLES)
    return (8000 * np.sin(2 * np.pi * hz * t / 8000)).astype("<i2").tobytes()  # whole periods at 400/1000 Hz


# ---------------------------------------------------------------------------------------------- IVR side

def serve_ivr(host: str, port: int, password: str, max_calls: int, stats_path: Path) -> None:
    """Runs in the IVR process: the node with a probe application; writes per-call stats when stopped."""
    import signal

    from ivr.node import IvrNode
    from ivr.session import CallEnded

    minute = 60 * 50
    low, high = tone_frame(LOW_HZ) * minute, tone_frame(HIGH_HZ) * minute
    results: list[dict] = []
    lock = threading.Lock()

    def on_call(session) -> None:
        tapped = [0]
        session.add_tap(lambda frame: tapped.__setitem__(0, tapped[0] + 1))
        started = time.monotonic()
        try:
            # The product's own reaction path: a prompt with barge-in, cut by the digit, then the next prompt.
            if session.play(low, barge_in=True) is not None:
                session.play(high, barge_in=False)
        except CallEnded:
            pass
        finally:
            with lock:
                results.append({"frames_tapped": tapped[0], "seconds": time.monotonic() - started})

    node = IvrNode(host, port, IVR_EXTENSION, password, on_call=on_call, local_ip="127.0.0.1", max_calls=max_calls)
    node.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    health = node.health()  # before stop(): the engine's counters for the run
    node.stop()
    stats_path.write_text(json.dumps({"calls": results, "ticks_late": health.media_ticks_late,
                                      "ticks_skipped": health.media_ticks_skipped,
                                      "frames_skipped": health.media_frames_skipped}))


# ------------------------------------------------------------------------------------------ caller side

def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


class ReactionProbe:
    """Notes when the first 1000 Hz frame arrives (zero crossings: 400 Hz has 8 per 20 ms, 1000 Hz 20)."""

    def __init__(self) -> None:
        self.high_tone_at: float | None = None

    def __call__(self, pcm: bytes, arrived: float) -> None:
        if self.high_tone_at is None:
            samples = np.frombuffer(pcm, dtype="<i2")
            if np.count_nonzero(np.diff(np.signbit(samples))) >= 16 and np.abs(samples).max() > 2000:
                self.high_tone_at = arrived


def run_round(calls: int, seconds: float, codec: str) -> dict:
    from ivr.softphone import Softphone

    passwords = {IVR_EXTENSION: "bench-ivr", CALLER_EXTENSION: "bench-caller"}
    with LocalSipServer(passwords, port=0) as sip:
        stats_path = Path(f"/tmp/bench-ivr-{os.getpid()}-{calls}.json")
        ivr = subprocess.Popen([sys.executable, __file__, "--serve-ivr", sip.host, str(sip.port),
                                passwords[IVR_EXTENSION], str(calls + 5), str(stats_path)],
                               stdout=subprocess.PIPE, text=True)
        try:
            if ivr.stdout.readline().strip() != "READY":
                raise RuntimeError("the IVR node process did not start")
            phone = Softphone(sip.host, sip.port, CALLER_EXTENSION, passwords[CALLER_EXTENSION])
            phone.start()
            noise = (np.random.default_rng(1).normal(0, 3000, 8000 * int(seconds + 10))).astype("<i2").tobytes()
            active, setup = [], []
            cpu_start, wall_start = proc_cpu_seconds(ivr.pid), time.monotonic()
            for _ in range(calls):
                dialled = time.monotonic()
                call = phone.dial(IVR_EXTENSION, codec)
                active.append((call, dialled))
                time.sleep(0.05)
            answered = []
            for call, dialled in active:
                if call.wait_answered(30):
                    setup.append(call.answered_at - dialled)
                    call.play(noise, wait=False)
                    answered.append(call)
            digit_plan = {id(call): random.uniform(2.0, max(2.5, seconds - 3)) for call in answered}
            probes: dict[int, ReactionProbe] = {}
            threads_max, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                threads_max = max(threads_max, proc_threads(ivr.pid))
                for call in answered:
                    plan = digit_plan.get(id(call))
                    if plan is not None and time.monotonic() - call.answered_at >= plan:
                        probes[id(call)] = ReactionProbe()
                        call.on_audio(probes[id(call)])
                        call.send_dtmf("5", wait=False)
                        digit_plan[id(call)] = None
                time.sleep(0.05)
            cpu = (proc_cpu_seconds(ivr.pid) - cpu_start) / (time.monotonic() - wall_start)
            latencies, lost, late, received, sent_late, expected, caller_skipped, gaps = [], 0, 0, 0, 0, 0, 0, 0
            worst_on_tick = 100.0
            for call in answered:
                stats = call.media_stats
                call_expected = round(call.seconds_connected() * 50)
                lost, late, received = lost + stats.packets_lost, late + stats.packets_late, received + stats.packets_received
                expected += call_expected
                if call_expected:
                    worst_on_tick = min(worst_on_tick,
                                        100 * (stats.packets_received - stats.packets_late) / call_expected)
                sent_late = max(sent_late, stats.late_ticks)  # one media clock for all the softphone's calls
                caller_skipped += stats.frames_skipped
                gaps += stats.gap_frames
                probe = probes.get(id(call))
                if probe and probe.high_tone_at and call.digit_sent_at:
                    latencies.append(probe.high_tone_at - call.digit_sent_at[0][1])
                call.hangup()
            time.sleep(1.0)
            phone.stop()
        finally:
            ivr.terminate()
            ivr.wait(30)
        ivr_side = json.loads(stats_path.read_text()) if stats_path.exists() else {"calls": []}
        stats_path.unlink(missing_ok=True)
    per_call = ivr_side["calls"]
    expected_up = round(sum(r["seconds"] for r in per_call) * 50)
    tapped = sum(r["frames_tapped"] for r in per_call)
    worst_up = min((100 * r["frames_tapped"] / (r["seconds"] * 50) for r in per_call if r["seconds"] > 0),
                   default=None)
    return {
        "calls": calls, "answered": len(answered),
        "unanswered_statuses": [call.summary().sip_status for call, _ in active if not call.answered],
        "setup_s_median": round(statistics.median(setup), 3) if setup else None,
        "setup_s_max": round(max(setup), 3) if setup else None,
        "ivr_cpu_percent_of_one_core": round(100 * cpu, 1), "ivr_threads_max": threads_max,
        "caller_to_ivr_frames": f"{tapped}/{expected_up}",
        "caller_to_ivr_delivered_percent": round(100 * tapped / expected_up, 2) if expected_up else None,
        "caller_to_ivr_worst_call_percent": round(worst_up, 2) if worst_up is not None else None,
        "ivr_to_caller_packets": f"{received}/{expected}",
        "ivr_to_caller_delivered_percent": round(100 * received / expected, 2) if expected else None,
        "ivr_to_caller_on_tick_percent": round(100 * (received - late) / expected, 2) if expected else None,
        "ivr_to_caller_worst_call_on_tick_percent": round(worst_on_tick, 2) if answered else None,
        "ivr_to_caller_late": late, "ivr_to_caller_lost": lost, "ivr_to_caller_gap_frames": gaps,
        "ivr_engine_ticks_late": ivr_side.get("ticks_late"), "ivr_engine_ticks_skipped": ivr_side.get("ticks_skipped"),
        "ivr_engine_frames_skipped": ivr_side.get("frames_skipped"),
        "softphone_media_ticks_late": sent_late,
        "softphone_frames_skipped": caller_skipped,  # caller->IVR frames the caller itself never sent
        "dtmf_reactions_measured": len(latencies),
        "dtmf_reaction_ms_median": round(1000 * statistics.median(latencies)) if latencies else None,
        "dtmf_reaction_ms_p95": round(1000 * sorted(latencies)[int(0.95 * (len(latencies) - 1))]) if latencies else None,
        "dtmf_reaction_ms_max": round(1000 * max(latencies)) if latencies else None,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-ivr":
        host, port, password, max_calls, stats = sys.argv[2:7]
        serve_ivr(host, int(port), password, int(max_calls), Path(stats))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="10,50,100", help="comma-separated N values")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long all N calls are held")
    parser.add_argument("--codec", default="PCMU", choices=["PCMU", "PCMA"])
    args = parser.parse_args()
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    for calls in (int(n) for n in args.calls.split(",")):
        print(json.dumps(run_round(calls, args.seconds, args.codec)), flush=True)


if __name__ == "__main__":
    main()
