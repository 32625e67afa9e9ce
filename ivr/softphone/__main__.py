"""`python -m ivr.softphone call 12345 [--dtmf 1,2] [--say FILE.wav] [--tone HZ] [--record OUT.wav] [--json] ...`
`python -m ivr.softphone answer [--extension E] [--tone HZ] [--dtmf 1@2] [--record OUT.wav] [--json] [--timeout S]`

Registers as a test extension (server, extension and password default to the configuration file `make run`
uses: $HOTLINE_SIP_CONF, else sip.conf, else sip.conf.example beside server.py; environment variables and
options override). `call` dials and runs the conversation
(simple options or --scenario FILE.yaml); `answer` waits for one incoming call (e.g. the IVR ringing a
member unit's remote seat), answers it and runs the same options. Then it hangs up (or the far end does) and
prints a summary. Exit status: 0 answered and every step passed, 1 a step failed, 2 not answered / no call
came / could not register, 64 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from inifile import ConfigError, config_path
from pcm import write_wav

from ..config import load_settings
from .phone import ActiveCall, Softphone, SoftphoneError
from .scenario import ScenarioError, Step, load_scenario, run_scenario

DEFAULT_SERVER = "127.0.0.1:5060"
DEFAULT_EXTENSION = "1001"
FIRST_DIGIT_AT = 2.0  # seconds after the answer, for --dtmf digits without an explicit @time
DIGIT_SPACING = 1.0
MAX_ANSWERED_SECONDS = 3600.0  # `answer` without --hold: until the far end hangs up, at most this long


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
    """Server, first test extension and every test extension's password ("password:<extension>") from the
    configuration file `make run` uses (inifile.config_path decides which, for both)."""
    settings = load_settings(path)
    defaults = {"server": f"{settings.registrar_host}:{settings.registrar_port}"}
    if settings.test_extensions:
        defaults["extension"] = next(iter(settings.test_extensions))
    return defaults | {f"password:{extension}": password for extension, password in settings.test_extensions.items()}


def build_parser(defaults: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ivr.softphone", description=__doc__.split("\n\n")[1])
    common = argparse.ArgumentParser(add_help=False)
    server = os.environ.get("HOTLINE_SIP_SERVER", defaults.get("server", DEFAULT_SERVER))
    common.add_argument("--server", type=parse_server, default=parse_server(server),
                        help="SIP server HOST:PORT (default $HOTLINE_SIP_SERVER, else the configuration's "
                             f"registrar, else {DEFAULT_SERVER}: the one `make run` starts)")
    common.add_argument("--extension", default=os.environ.get("HOTLINE_SOFTPHONE_EXTENSION",
                                                              defaults.get("extension", DEFAULT_EXTENSION)),
                        help="test extension to register as (default: the first of the configuration's "
                             "[test_extensions])")
    common.add_argument("--password", default=os.environ.get("HOTLINE_SOFTPHONE_PASSWORD"),
                        help="its password (default $HOTLINE_SOFTPHONE_PASSWORD, else the extension's in the "
                             "configuration file's [test_extensions])")
    common.add_argument("--dtmf", default="", help="digits to press, e.g. 1,2 or 1@2.5,#@4 (seconds after answer)")
    common.add_argument("--say", type=Path, help="sound file played as the voice from the answer on")
    common.add_argument("--say-text", help="text spoken with espeak-ng from the answer on")
    common.add_argument("--voice", default="en", help="espeak-ng voice for --say-text")
    common.add_argument("--tone", type=float, metavar="HZ",
                        help="a continuous sine tone as the microphone (sound files and digits go first)")
    common.add_argument("--record", type=Path, help="WAV file for everything this phone heard")
    common.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", parents=[common], help="place one call")
    call.add_argument("number")
    call.add_argument("--codec", default="PCMU", type=str.upper, choices=["PCMU", "PCMA"])
    call.add_argument("--scenario", type=Path, help="YAML scenario (replaces --dtmf/--say)")
    call.add_argument("--hold", type=float, default=None,
                      help="seconds to stay on the line after the last action (default 2; hang-up by the IVR ends earlier)")
    call.add_argument("--answer-timeout", type=float, default=30.0)
    answer = commands.add_parser("answer", parents=[common], help="answer one incoming call")
    answer.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the call (default 60)")
    answer.add_argument("--hold", type=float, default=None,
                        help="hang up this many seconds after answering (default: stay until the far end hangs up, "
                             f"at most {MAX_ANSWERED_SECONDS:g} s)")
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
    try:
        steps = load_scenario(args.scenario) if args.scenario else simple_steps(args)
    except (ScenarioError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 64

    def converse(phone: Softphone) -> tuple[ActiveCall | None, list[str]]:
        call = phone.dial(args.number, args.codec)
        errors: list[str] = []
        if call.wait_answered(args.answer_timeout):
            errors = _run_steps(call, steps, 2.0 if args.hold is None else args.hold)
        return call, errors

    return _with_phone(args, converse, answer=False)


def run_answer(args: argparse.Namespace) -> int:
    try:
        steps = simple_steps(args)
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 64

    def converse(phone: Softphone) -> tuple[ActiveCall | None, list[str]]:
        call = phone.wait_incoming(args.timeout)
        if call is None:
            return None, [f"no call came to {args.extension} within {args.timeout:g} s"]
        hold = MAX_ANSWERED_SECONDS if args.hold is None else args.hold
        return call, _run_steps(call, steps, hold, from_answer=True)

    return _with_phone(args, converse, answer=True)


def _run_steps(call: ActiveCall, steps: list[Step], hold: float, from_answer: bool = False) -> list[str]:
    """Run the conversation, stay `hold` seconds (counted from the answer when `from_answer`, else after the
    last step; a hang-up by the far end ends it earlier), hang up."""
    errors: list[str] = []
    try:
        run_scenario(call, steps)
        call.wait_sent()  # let queued audio and digits finish
        call.wait_ended(max(0.0, hold - call.seconds_connected()) if from_answer else hold)
    except ScenarioError as exc:
        errors.append(str(exc))
    call.hangup()
    time.sleep(0.2)
    return errors


def _with_phone(args: argparse.Namespace,
                converse: Callable[[Softphone], tuple[ActiveCall | None, list[str]]], *, answer: bool) -> int:
    """Register, run `converse`, unregister; print the summary; the exit status."""
    if args.password is None:
        print("error: the test extension's password is needed (--password or $HOTLINE_SOFTPHONE_PASSWORD)",
              file=sys.stderr)
        return 64
    # pyVoIP prints diagnostics on stdout; keep stdout for the summary alone.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            phone = Softphone(*args.server, args.extension, args.password, answer=answer, tone=args.tone)
            phone.start()
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 64
        except (SoftphoneError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            call, errors = converse(phone)
        finally:
            phone.stop()
    if call is None:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 2
    recording = write_wav(args.record, call.heard()) if args.record and call.answered else None
    summary = call.summary(recording)
    summary.errors = errors
    if args.json:
        print(summary.to_json())
    else:
        print(f"{summary.direction} call {summary.call_id} {'to' if not call.incoming else 'from'} "
              f"{summary.number}: {'answered' if summary.answered else 'not answered'} "
              f"(SIP {summary.sip_status} {summary.sip_reason}), {summary.connected_seconds:.1f} s connected, "
              f"digits sent {summary.digits_sent or '-'}, ended by {summary.ended_by or '-'}, "
              f"recording {summary.recording or '-'}")
        for error in errors:
            print(f"FAILED: {error}")
    if not summary.answered:
        return 2
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    try:
        defaults = config_defaults(config_path())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 64
    args = build_parser(defaults).parse_args(argv)
    if args.password is None:
        args.password = defaults.get(f"password:{args.extension}")
    return run_call(args) if args.command == "call" else run_answer(args)


if __name__ == "__main__":
    sys.exit(main())
