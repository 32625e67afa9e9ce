"""Recognition results as typed values, parsed from Vosk's JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the audio fed to the recogniser's stream
    end: float
    conf: float


@dataclass(frozen=True)
class Utterance:
    """One final result: the text and its words. `forced` marks a cut at the utterance length limit
    rather than a pause in speech."""

    text: str
    words: list[Word] = field(default_factory=list)
    forced: bool = False

    @property
    def confidence(self) -> float:
        """Mean word confidence (0 for an empty utterance)."""
        return sum(w.conf for w in self.words) / len(self.words) if self.words else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def parse_final(raw: str, *, offset: float = 0.0, forced: bool = False) -> Utterance:
    """Parse Vosk's Result()/FinalResult() JSON; `offset` shifts word times (seconds) into the caller's timeline."""
    data = json.loads(raw)
    words = [Word(w["word"], round(w["start"] + offset, 3), round(w["end"] + offset, 3), float(w["conf"]))
             for w in data.get("result", [])]
    return Utterance(text=data.get("text", ""), words=words, forced=forced)


def parse_partial(raw: str) -> str:
    return json.loads(raw).get("partial", "")
