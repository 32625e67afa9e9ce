"""Hot reload: the flow a new call gets is re-read when its files changed; a broken edit is refused.

Checked at call start (cheap: one stat per file, a hash only when the stat changed), so no watcher thread
is needed. A call holds the `FlowBundle` it got, which never changes under it.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from callflows.bundle import FlowBundle, load_bundle
from callflows.issues import FlowError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FileState:
    mtime_ns: int
    size: int
    digest: str


def _state(path: Path) -> _FileState | None:
    try:
        stat = path.stat()
        return _FileState(stat.st_mtime_ns, stat.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    except FileNotFoundError:
        return None


class FlowRegistry:
    """Flows by name from `directory` (`<name>.yaml`)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[FlowBundle, dict[Path, _FileState | None]]] = {}
        self._refused: dict[str, dict[Path, _FileState | None]] = {}

    def get(self, name: str) -> FlowBundle:
        """The current version of flow `name`. Raises FlowError only when no good version was ever loaded."""
        with self._lock:
            current = self._loaded.get(name)
            if current is not None and (_unchanged(current[1]) or _unchanged(self._refused.get(name))):
                return current[0]
            path = self.directory / f"{name}.yaml"
            try:
                bundle = load_bundle(path)
            except (FlowError, OSError) as exc:
                if current is None:
                    raise
                log.error("flow %s: edit refused, calls keep the previous version:\n%s", name, exc)
                self._refused[name] = {file: _state(file) for file in current[1]}
                return current[0]
            self._loaded[name] = (bundle, {file: _state(file) for file in bundle.files})
            self._refused.pop(name, None)
            if current is not None:
                log.info("flow %s reloaded from %s", name, path)
            return bundle


def _unchanged(states: dict[Path, _FileState | None] | None) -> bool:
    """True when every file is as recorded (same stat, or same content after a mere touch)."""
    if states is None:
        return False
    for path, known in states.items():
        try:
            stat = path.stat()
        except FileNotFoundError:
            if known is not None:
                return False
            continue
        if known is None:
            return False
        if (stat.st_mtime_ns, stat.st_size) != (known.mtime_ns, known.size):
            now = _state(path)
            if now is None or now.digest != known.digest:
                return False
    return True
