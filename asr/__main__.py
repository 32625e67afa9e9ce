"""`python -m asr transcribe FILE [--lang ko] [--grammar WORD,WORD,...] [--json]`; `python -m asr languages`."""

from __future__ import annotations

import argparse
import sys

from .errors import AudioFileError, ModelIntegrityError, ModelNotFound
from .models import default_registry
from .recognizer import match_phrase
from .transcript import transcribe_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr", description="Offline speech recognition (Vosk).")
    commands = parser.add_subparsers(dest="command", required=True)
    transcribe = commands.add_parser("transcribe", help="transcribe a WAV file (any rate)")
    transcribe.add_argument("file")
    transcribe.add_argument("--lang", default="ko")
    transcribe.add_argument("--grammar", help="comma-separated phrases: recognise only these (plus unknown)")
    transcribe.add_argument("--json", action="store_true", help="print words, times and confidences as JSON")
    commands.add_parser("languages", help="list languages with an installed model")
    args = parser.parse_args(argv)

    registry = default_registry()
    if args.command == "languages":
        print("\n".join(registry.available_languages()))
        return 0
    grammar = [p.strip() for p in args.grammar.split(",") if p.strip()] if args.grammar else None
    try:
        transcript = transcribe_file(args.file, language=args.lang, grammar=grammar, registry=registry)
    except (AudioFileError, ModelNotFound, ModelIntegrityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(transcript.to_json())
    elif grammar:
        understood = [match_phrase(u, grammar, registry.settings.grammar_confidence) for u in transcript.utterances]
        print(" ".join(p if p else "<not understood>" for p in understood))
    else:
        print(transcript.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
