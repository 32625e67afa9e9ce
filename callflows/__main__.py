"""`python -m callflows check FILE...`, `show FILE` (Mermaid) and `timing FILE` (seconds to the first question)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from callflows.bundle import load_bundle
from callflows.issues import FlowError
from callflows.loader import parse_flow
from callflows.mermaid import to_mermaid
from callflows.validator import check_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callflows", description="Check and draw call-flow files.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="report every mistake with file:line; exit 0 only when clean")
    check.add_argument("files", nargs="+", type=Path)
    show = commands.add_parser("show", help="print the flow as a Mermaid flowchart")
    show.add_argument("file", type=Path)
    timing = commands.add_parser("timing", help="seconds a caller pressing nothing listens before the first "
                                                "free-speech question (prompts synthesised with espeak-ng)")
    timing.add_argument("file", type=Path)
    timing.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "callflows-prompts",
                        help="prompt cache directory")
    args = parser.parse_args(argv)

    if args.command == "timing":
        return _timing(args.file, args.cache)

    if args.command == "check":
        clean = True
        for path in args.files:
            issues = check_file(path) if path.is_file() else None
            if issues is None:
                print(f"{path}: no such file", file=sys.stderr)
                clean = False
            elif issues:
                print("\n".join(str(issue) for issue in issues))
                clean = False
            else:
                print(f"{path}: OK")
        return 0 if clean else 1

    flow, issues = parse_flow(args.file, args.file.read_text(encoding="utf-8"))
    if flow is None:
        print("\n".join(str(issue) for issue in issues), file=sys.stderr)
        return 1
    sys.stdout.write(to_mermaid(flow))
    return 0


def _timing(path: Path, cache: Path) -> int:
    # The one import from outside callflows: this command-line entry composes the flow tools, and timing
    # measures real synthesised prompts (tts is the edge behind the PromptAudio port).
    from callflows.prompts import PromptLibrary
    from callflows.timing import path_to_first_question
    from tts import PromptSynthesizer

    try:
        bundle = load_bundle(path)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    steps = path_to_first_question(bundle, PromptLibrary(PromptSynthesizer(cache)))
    for step in steps:
        print(f"{step.seconds:6.2f} s  {step.node:<16} {step.what}")
    print(f"{sum(step.seconds for step in steps):6.2f} s  from answer until the caller may speak the request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
