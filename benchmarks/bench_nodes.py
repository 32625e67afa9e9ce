"""One IVR node versus two behind Kamailio's dispatcher, in the same run: calls held and call set-ups per
second, with SIPp (Debian's sip-tester) as the caller, so the load generator is C and leaves the cores to
the nodes.

    .venv/bin/python benchmarks/bench_nodes.py --held 50,100 --hold 20 --setup-rates 20,50,100 --setup-seconds 10

For each cluster size (1 node, then 2 nodes): a fresh Kamailio with the dispatcher (deploy/kamailio/kamailio.cfg,
WITH_DISPATCHER) and that many IVR node processes (each an ivr.node.IvrNode on its own SIP port and RTP
range, answering every call with a looping prompt and holding it until the caller hangs up). Then:

- calls held: SIPp places N calls (at --rate per second) that each stream µ-law audio for --hold seconds and
  hang up. Printed: calls answered and completed, refused or failed (SIPp's count), the calls each node took,
  each node's CPU (percent of one core over the hold), its 20 ms media ticks handled late, and the caller's
  audio the node received against 50 frames per second of each call (delivered %). The nodes' audio to the
  callers is not counted (SIPp does not count what it receives): the late ticks are the nodes' own measure
  of their sending; benchmarks/bench_calls.py counts that direction for one node.
- call set-ups per second: SIPp offers calls at R per second for --setup-seconds, each hung up --setup-hold ms
  after the answer. Printed: offered and achieved set-ups per second (completed calls over the offering
  time), failed calls, and the time from the first INVITE to the 200 OK (digest challenge included)
  p50/p95/max.

Each node's max_calls is --max-calls (beyond it the node answers 486 and Kamailio offers the call to the
next node). Speed is measured here, never asserted in tests; figures go in the README with the date and
`uptime` next to them.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.local_sip_server import LocalSipServer, free_udp_port  # noqa: E402

SERVICE = "12345"
CALLER = "1001"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
RTP_RANGES = [(30000, 31999), (32000, 33999)]
FRAMES_PER_SECOND = 50

SDP = """v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""


def sipp_request(caller: str, request_line: str, cseq: str, *, in_dialog: bool = False, extra: str = "",
                 sdp: bool = False, retransmit: bool = True) -> str:
    """One <send> of SIPp's caller (SIPp fills the [keywords] per call)."""
    headers = [request_line,
               "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
               f"From: <sip:{caller}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag[call_number]",
               "To: <sip:[service]@[remote_ip]:[remote_port]>" + ("[peer_tag_param]" if in_dialog else ""),
               "Call-ID: [call_id]", f"CSeq: {cseq}"]
    if request_line.startswith("INVITE"):
        headers.append(f"Contact: <sip:{caller}@[local_ip]:[local_port]>")
    headers += [line for line in (extra, "Max-Forwards: 70") if line]
    if sdp:
        headers.append("Content-Type: application/sdp")
    text = "\n".join([*headers, "Content-Length: [len]" if sdp else "Content-Length: 0", ""])
    if sdp:
        text += "\n" + SDP
    attributes = ' retrans="500"' if retransmit else ""
    return f"  <send{attributes}><![CDATA[\n{text}]]></send>\n"


def scenario(caller: str, audio: Path) -> str:
    """SIPp's caller: INVITE, answer the digest challenge, ACK the answer, stream the µ-law file for the hold
    time (-d), BYE. A refusal (486, 503) or a timeout ends the call as failed."""
    invite = "INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0"
    return "".join([
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="hotline caller">\n',
        sipp_request(caller, invite, "1 INVITE", sdp=True),
        '  <recv response="100" optional="true"/>\n  <recv response="401" auth="true"/>\n',
        sipp_request(caller, "ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0", "1 ACK", in_dialog=True,
                     retransmit=False),
        sipp_request(caller, invite, "2 INVITE", extra="[authentication]", sdp=True),
        '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
        '  <recv response="200" rrs="true" rtd="true"/>\n',
        sipp_request(caller, "ACK [next_url] SIP/2.0", "2 ACK", in_dialog=True, extra="[routes]", retransmit=False),
        f'  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>\n  <pause/>\n',
        sipp_request(caller, "BYE [next_url] SIP/2.0", "3 BYE", in_dialog=True, extra="[routes]"),
        '  <recv response="200"/>\n</scenario>\n',
    ])


# ---------------------------------------------------------------------------------------------- node side

def serve_node(registrar_port: int, password: str, sip_port: int, rtp_low: int, rtp_high: int,
               max_calls: int) -> None:
    """Runs in a node process: answers every call with a looping prompt (1 s of 440 Hz, 1 s of silence) and
    counts the caller's frames; on SIGTERM prints one JSON line of what it did."""
    import numpy as np

    from ivr.node import IvrNode
    from ivr.session import CallEnded, CallSession

    t = np.arange(8000)
    prompt = (np.concatenate([6000 * np.sin(2 * np.pi * 440 * t / 8000), np.zeros(8000)])).astype("<i2").tobytes()
    lock = threading.Lock()
    stats = {"calls": 0, "peak_calls": 0, "frames_received": 0, "frames_expected": 0}
    active = [0]

    def on_call(session: CallSession) -> None:
        received = [0]
        session.add_tap(lambda frame: received.__setitem__(0, received[0] + 1))
        with lock:
            stats["calls"] += 1
            active[0] += 1
            stats["peak_calls"] = max(stats["peak_calls"], active[0])
        started = time.monotonic()
        try:
            while not session.ended:
                session.play(prompt, barge_in=False)
        except CallEnded:
            pass
        finally:
            with lock:
                active[0] -= 1
                stats["frames_received"] += received[0]
                stats["frames_expected"] += int((time.monotonic() - started) * FRAMES_PER_SECOND)

    node = IvrNode("127.0.0.1", registrar_port, SERVICE, password, on_call=on_call, sip_port=sip_port,
                   rtp_ports=(rtp_low, rtp_high), max_calls=max_calls, media_timeout=0)
    marks: dict[str, float] = {}

    def usage() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return own.ru_utime + own.ru_stime

    def mark(_signum: int, _frame: object) -> None:  # SIGUSR1: start of the measured hold
        marks["cpu"], marks["wall"], marks["late"] = usage(), time.monotonic(), node.media_clock.ticks_late

    signal.signal(signal.SIGUSR1, mark)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    node.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    wall = time.monotonic() - marks.get("wall", time.monotonic())
    result = {**stats, "cpu_percent": round(100 * (usage() - marks.get("cpu", 0.0)) / wall, 1) if wall > 0 else None,
              "ticks_late": node.media_clock.ticks_late - marks.get("late", 0), "threads": threading.active_count()}
    node.stop()
    print(json.dumps(result), flush=True)


@dataclass
class NodeProcess:
    process: subprocess.Popen
    sip_port: int
    result: dict = field(default_factory=dict)

    def mark(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        lines = [line for line in output.splitlines() if line.startswith("{")]
        self.result = json.loads(lines[-1]) if lines else {"error": output[-2000:]}
        return self.result


def start_nodes(count: int, kamailio_port: int, password: str, sip_ports: list[int], max_calls: int) -> list[NodeProcess]:
    nodes = []
    for index in range(count):
        low, high = RTP_RANGES[index]
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-node", str(kamailio_port), password, str(sip_ports[index]),
             str(low), str(high), str(max_calls)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = process.stdout.readline()
        if line.strip() != "READY":
            raise SystemExit(f"node {index + 1} did not start: {line}{process.stdout.read()[-2000:]}")
        nodes.append(NodeProcess(process, sip_ports[index]))
    return nodes


# ---------------------------------------------------------------------------------------------- SIPp side

@dataclass
class SippRun:
    successful: int
    failed: int
    setup_ms: list[float]
    seconds: float
    errors: list[str]  # SIPp's reasons for failed calls, most frequent first (with counts)


def run_sipp(work: Path, kamailio_port: int, password: str, *, calls: int, rate: float, hold_ms: int,
             limit: int, name: str) -> SippRun:
    """SIPp places `calls` calls at `rate` per second, each held `hold_ms`; returns its counts and the
    response times of the answers."""
    scenario_file = work / f"{name}.xml"
    scenario_file.write_text(scenario(CALLER, work / "caller.wav"))
    command = [SIPP, f"127.0.0.1:{kamailio_port}", "-sf", str(scenario_file), "-s", SERVICE, "-au", CALLER,
               "-ap", password, "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
               "-mp", str(free_udp_port()), "-m", str(calls), "-r", str(rate), "-l", str(limit),
               "-d", str(hold_ms), "-nostdin", "-trace_stat", "-stf", str(work / f"{name}.csv"), "-fd", "1",
               "-trace_rtt", "-rtt_freq", "1", "-timeout", f"{int(calls / rate + hold_ms / 1000 + 60)}s",
               "-max_recv_loops", "10000", "-default_behaviors", "all,-bye", "-trace_err", "-error_file", str(work / f"{name}_errors.log")]
    started = time.monotonic()
    result = subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - started
    stats = list(csv.DictReader((work / f"{name}.csv").read_text().splitlines(), delimiter=";"))
    if not stats:
        raise SystemExit(f"SIPp wrote no statistics (exit {result.returncode}): {result.stderr[-2000:]}")
    last = stats[-1]
    setup = []
    for path in work.glob(f"{name}_*_rtt.csv"):
        for row in csv.DictReader(path.read_text().splitlines(), delimiter=";"):
            setup.append(float(row["response_time_ms"]))
        path.unlink()
    return SippRun(int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"]), setup, seconds,
                   sipp_errors(work / f"{name}_errors.log"))


def sipp_errors(path: Path) -> list[str]:
    """SIPp's error log summarised: each kind of failed call (an unexpected answer by its status line,
    otherwise the event with numbers blanked) with its count, most frequent first."""
    if not path.exists():
        return []
    kinds: dict[str, int] = {}
    for event in re.findall(r"^\S+\t\S+\t[0-9.]+: (.*)$", path.read_text(errors="replace"), re.MULTILINE):
        if event.startswith(("Dead call", "Discarding message")):
            continue  # what arrived for a call already aborted (a refusal repeated until acknowledged)
        answer = re.search(r"received 'SIP/2\.0 (\d{3} .*)", event)
        kind = f"answered {answer.group(1)}" if answer else re.sub(r"[0-9]+", "N", event)[:100]
        kinds[kind] = kinds.get(kind, 0) + 1
    return [f"{count}x {kind}" for kind, count in sorted(kinds.items(), key=lambda item: -item[1])][:3]


def failures(run: SippRun) -> str:
    return f" ({'; '.join(run.errors)})" if run.failed and run.errors else ""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def caller_audio(path: Path) -> None:
    """Ten seconds of µ-law noise-like speech stand-in (sox), looped by SIPp's rtp_stream."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path), "synth", "10",
                    "pinknoise", "vol", "0.3"], check=True)


# ---------------------------------------------------------------------------------------------- the run

def bench_cluster(count: int, args: argparse.Namespace, work: Path) -> None:
    extensions = {SERVICE: secrets.token_hex(8), CALLER: secrets.token_hex(8)}
    sip_ports = [free_udp_port() for _ in range(count)]
    with LocalSipServer(extensions, port=0, dispatcher_nodes=[("127.0.0.1", port) for port in sip_ports]) as kamailio:
        for held in args.held:
            nodes = start_nodes(count, kamailio.port, extensions[SERVICE], sip_ports, args.max_calls)
            placing = held / args.rate
            marker = threading.Timer(placing, lambda: [node.mark() for node in nodes])
            marker.start()  # the nodes measure from when every call should be up
            run = run_sipp(work, kamailio.port, extensions[CALLER], calls=held, rate=args.rate,
                           hold_ms=int(args.hold * 1000), limit=held, name=f"held{count}_{held}")
            marker.cancel()
            results = [node.stop() for node in nodes]
            per_node = ", ".join(
                f"node{i + 1}: {r.get('calls')} calls (peak {r.get('peak_calls')}), CPU {r.get('cpu_percent')} %, "
                f"ticks late {r.get('ticks_late')}, caller audio "
                f"{100 * r.get('frames_received', 0) / max(1, r.get('frames_expected', 0)):.1f} %"
                for i, r in enumerate(results))
            print(f"nodes={count} held N={held} hold={args.hold:g}s: answered and completed {run.successful}, "
                  f"failed {run.failed}{failures(run)}; {per_node}", flush=True)
        for rate in args.setup_rates:
            nodes = start_nodes(count, kamailio.port, extensions[SERVICE], sip_ports, args.max_calls)
            calls = int(rate * args.setup_seconds)
            run = run_sipp(work, kamailio.port, extensions[CALLER], calls=calls, rate=rate,
                           hold_ms=args.setup_hold, limit=max(calls, 1), name=f"setup{count}_{rate}")
            results = [node.stop() for node in nodes]
            offering = calls / rate
            taken = "/".join(str(r.get("calls")) for r in results)
            print(f"nodes={count} set-ups offered {rate:g}/s x {offering:g}s: completed {run.successful} "
                  f"(achieved {run.successful / max(offering, run.seconds - args.setup_hold / 1000):.1f}/s), "
                  f"failed {run.failed}{failures(run)}, per node {taken}; INVITE->200 p50/p95/max "
                  f"{percentile(run.setup_ms, 0.5):.0f}/{percentile(run.setup_ms, 0.95):.0f}/"
                  f"{max(run.setup_ms, default=float('nan')):.0f} ms", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-node":
        serve_node(*(int(v) if v.isdigit() else v for v in sys.argv[2:]))  # type: ignore[arg-type]
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,2", help="cluster sizes to compare (1 or 2 nodes)")
    parser.add_argument("--held", default="50,100", help="simultaneous calls to hold, comma-separated")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds each held call lasts")
    parser.add_argument("--rate", type=float, default=20.0, help="calls placed per second for the held calls")
    parser.add_argument("--setup-rates", default="20,50,100", help="offered call set-ups per second")
    parser.add_argument("--setup-seconds", type=float, default=10.0, help="how long each rate is offered")
    parser.add_argument("--setup-hold", type=int, default=500, help="ms each set-up call lasts after its answer")
    parser.add_argument("--max-calls", type=int, default=300, help="each node's max_calls")
    args = parser.parse_args()
    args.held = [int(v) for v in args.held.split(",") if v]
    args.setup_rates = [float(v) for v in args.setup_rates.split(",") if v]
    counts = [int(v) for v in args.nodes.split(",") if v]
    if any(count not in (1, 2) for count in counts):
        parser.error("--nodes: 1 and/or 2")
    if not Path(SIPP).exists():
        parser.error("SIPp not found: apt-get install sip-tester (deploy/setup.sh installs it)")
    print(f"bench_nodes: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as tmp:
        work = Path(tmp)
        caller_audio(work / "caller.wav")
        for count in counts:
            bench_cluster(count, args, work)
    print(f"load {os.getloadavg()[0]:.2f} at the end", flush=True)


if __name__ == "__main__":
    main()
