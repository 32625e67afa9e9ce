"""`python -m ivr.softphone call 12345 [--dtmf 1,2] [--say FILE.wav] [--record OUT.wav] [--json] ...`

Registers as a test extension (server, extension and password default to sip.conf in the current directory,
or $HOTLINE_SIP_CONF; environment variables and options override), dials, runs the conversation (simple options or --scenario FILE.yaml), hangs
up and prints a summary. Exit status: 0 answered and every step passed, 1 a step failed, 2 not answered or
could not register, 64 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from inifile import ConfigError
from pcm import write_wav

from ..config import load_settings
from .phone import Softphone, SoftphoneError
from .scenario import ScenarioError, Step, load_scenario, run_scenario

DEFAULT_SERVER = "127.0.0.1:5060"
DEFAULT_EXTENSION = "1001"
FIRST_DIGIT_AT = 2.0  # seconds after the answer, for --dtmf digits without an explicit @time
DIGIT_SPACING = 1.0


def parse_server(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def dtmf_steps(spec: str) -> list[Step]:
    """'1,2' or '1@2.5,#@4' -> 'at' + 'dtmf' steps (seconds after the answer)."""
    steps: list[Step] = []
    moment = FIRST_DIGIT_AT
    for index, item in enumerate(filter(None, spec.split(","))):
        digits, _, at = item.partition("@")
        if not digits or any(d not in "0123456789*#ABCD" for d in digits):
            raise argparse.ArgumentTypeError(f"--dtmf: {item!r} is not a key from 0-9 * # A-D")
        try:
            moment = float(at) if at else (moment if index == 0 else moment + DIGIT_SPACING)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"--dtmf: bad time in {item!r}") from exc
        steps += [Step(0, None, "at", {"seconds": moment}), Step(0, None, "dtmf", {"digits": digits})]
    return steps


def config_defaults(path: Path) -> dict[str, str]:
    """Server and first test extension from sip.conf (the file `make run` uses), when it exists."""
    if not path.is_file():
        return {}
    settings = load_settings(path)
    defaults = {"server": f"{settings.registrar_host}:{settings.registrar_port}"}
    if settings.test_extensions:
        extension, password = next(iter(settings.test_extensions.items()))
        defaults |= {"extension": extension, "password": password}
    return defaults


def build_parser(defaults: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ivr.softphone", description=__doc__.split("\n\n")[1])
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", help="place one call")
    call.add_argument("number")
    call.add_argument("--server", type=parse_server,
                      default=parse_server(os.environ.get("HOTLINE_SIP_SERVER", defaults.get("server", DEFAULT_SERVER))),
                      help="SIP server HOST:PORT (default $HOTLINE_SIP_SERVER, else sip.conf's registrar, else "
                           f"{DEFAULT_SERVER}: the one `make run` starts)")
    call.add_argument("--extension", default=os.environ.get("HOTLINE_SOFTPHONE_EXTENSION",
                                                            defaults.get("extension", DEFAULT_EXTENSION)),
                      help="test extension to register as (default: the first of sip.conf's [test_extensions])")
    call.add_argument("--password", default=os.environ.get("HOTLINE_SOFTPHONE_PASSWORD", defaults.get("password")),
                      help="its password (default $HOTLINE_SOFTPHONE_PASSWORD, else from sip.conf)")
    call.add_argument("--codec", default="PCMU", type=str.upper, choices=["PCMU", "PCMA"])
    call.add_argument("--dtmf", default="", help="digits to press, e.g. 1,2 or 1@2.5,#@4 (seconds after answer)")
    call.add_argument("--say", type=Path, help="sound file played as the caller's voice from the answer on")
    call.add_argument("--say-text", help="text spoken with espeak-ng from the answer on")
    call.add_argument("--voice", default="en", help="espeak-ng voice for --say-text")
    call.add_argument("--scenario", type=Path, help="YAML scenario (replaces --dtmf/--say)")
    call.add_argument("--record", type=Path, help="WAV file for everything the caller heard")
    call.add_argument("--hold", type=float, default=None,
                      help="seconds to stay on the line after the last action (default 2; hang-up by the IVR ends earlier)")
    call.add_argument("--answer-timeout", type=float, default=30.0)
    call.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    return parser


def simple_steps(args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []
    if args.say:
        steps.append(Step(0, None, "say", {"file": args.say, "wait": False}))
    if args.say_text:
        steps.append(Step(0, None, "say", {"text": args.say_text, "voice": args.voice, "wait": False}))
    steps += dtmf_steps(args.dtmf)
    return steps


def run_call(args: argparse.Namespace) -> int:
    if args.password is None:
        print("error: the test extension's password is needed (--password or $HOTLINE_SOFTPHONE_PASSWORD)",
              file=sys.stderr)
        return 64
    try:
        steps = load_scenario(args.scenario) if args.scenario else simple_steps(args)
    except (ScenarioError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 64
    errors: list[str] = []
    # pyVoIP prints diagnostics on stdout; keep stdout for the summary alone.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            phone = Softphone(*args.server, args.extension, args.password)
            phone.start()
        except (SoftphoneError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            call = phone.dial(args.number, args.codec)
            if call.wait_answered(args.answer_timeout):
                try:
                    run_scenario(call, steps)
                    call.wait_sent()  # let queued audio and digits finish
                    call.wait_ended(2.0 if args.hold is None else args.hold)
                except ScenarioError as exc:
                    errors.append(str(exc))
                call.hangup()
                time.sleep(0.2)
        finally:
            phone.stop()
    recording = write_wav(args.record, call.heard()) if args.record and call.answered else None
    summary = call.summary(recording)
    summary.errors = errors
    if args.json:
        print(summary.to_json())
    else:
        print(f"call {summary.call_id} to {summary.number}: "
              f"{'answered' if summary.answered else 'not answered'} (SIP {summary.sip_status} {summary.sip_reason}), "
              f"{summary.connected_seconds:.1f} s connected, digits sent {summary.digits_sent or '-'}, "
              f"ended by {summary.ended_by or '-'}, recording {summary.recording or '-'}")
        for error in errors:
            print(f"FAILED: {error}")
    if not summary.answered:
        return 2
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    config = Path(os.environ.get("HOTLINE_SIP_CONF", "sip.conf"))
    try:
        defaults = config_defaults(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 64
    args = build_parser(defaults).parse_args(argv)
    return run_call(args)


if __name__ == "__main__":
    sys.exit(main())
