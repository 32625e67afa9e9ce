"""N-party audio mixing, one 20 ms frame per leg per tick: each leg hears the sum of the others, never itself.

The mixer has no thread and no clock of its own: the conference calls `mix()` once per tick of the node's
media clock, and legs `push()` the frames they receive whenever they arrive. Each leg has a small queue:

- a leg that is late, lost packets or sends nothing (phones that stop sending in silence) simply contributes
  silence on that tick: the others are never held up waiting for it;
- a leg starts contributing once `prebuffer_frames` are queued (a little slack for packets that arrive in
  pairs), and after running dry it waits for that slack again instead of alternating frame/silence;
- a leg whose clock runs faster than ours has its oldest frames dropped beyond `max_queued_frames`, so the
  delay it adds stays bounded (counted as `frames_dropped`).

Clipping protection: the sum of several loud parties overflows 16 bits. Each output (and the mixed
recording) has a limiter: when a frame would exceed full scale its gain drops at once to just fit, then
recovers by `release_per_frame` per tick (a ramp within the frame, so no click). Nothing ever wraps around.

Muted and listen-only legs hear everyone but contribute nothing (muted is a state the operator toggles,
listen-only a role given at join, e.g. an operator coaching a seat). `play_to(leg, pcm)` mixes a prompt into
one leg's output only (hold message, join/leave tones).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pcm import FRAME_BYTES, FRAME_SAMPLES, SILENCE_FRAME

FULL_SCALE = 32767
_RAMP = np.arange(1, FRAME_SAMPLES + 1, dtype=np.float64) / FRAME_SAMPLES


@dataclass
class LegStats:
    """Counters of one leg, for the conference's state and the benchmark (expected vs delivered)."""

    frames_received: int = 0  # pushed by the leg's call
    frames_mixed: int = 0  # taken on a tick: this audio reached the others
    frames_missing: int = 0  # ticks with no frame ready (late, lost, silent sender, or priming): silence used
    frames_dropped: int = 0  # oldest frames discarded because the leg sent faster than the clock
    frames_out: int = 0  # mixed frames produced for the leg to hear


@dataclass(frozen=True)
class Mixed:
    """One tick's result. `outputs[leg]` is what the leg hears; `inputs[leg]` what it contributed (silence
    when it had no frame, is muted or listen-only); `mixed` the whole conference (for the mixed recording)."""

    outputs: dict[str, bytes]
    inputs: dict[str, bytes]
    mixed: bytes


@dataclass(eq=False)
class _Leg:
    muted: bool
    listen_only: bool
    queue: deque[bytes] = field(default_factory=deque)
    prompt: deque[bytes] = field(default_factory=deque)
    primed: bool = False
    gain: float = 1.0
    stats: LegStats = field(default_factory=LegStats)

    @property
    def speaks(self) -> bool:
        return not (self.muted or self.listen_only)

    def take(self, prebuffer: int) -> bytes | None:
        """This tick's frame, or None (counted missing) while priming or when the queue ran dry."""
        if not self.primed and len(self.queue) >= prebuffer:
            self.primed = True
        if not self.primed or not self.queue:
            self.primed = False
            self.stats.frames_missing += 1
            return None
        self.stats.frames_mixed += 1
        return self.queue.popleft()


class Mixer:
    """Mixes the legs added to it; every method is thread-safe (pushes come from the media thread, mute and
    listen-only from an API request, `mix()` from the media clock)."""

    def __init__(self, *, prebuffer_frames: int = 2, max_queued_frames: int = 5,
                 release_per_frame: float = 0.05) -> None:
        if not 1 <= prebuffer_frames <= max_queued_frames:
            raise ValueError("need 1 <= prebuffer_frames <= max_queued_frames")
        self.prebuffer_frames = prebuffer_frames
        self.max_queued_frames = max_queued_frames
        self.release_per_frame = release_per_frame
        self._legs: dict[str, _Leg] = {}
        self._mixed_gain = 1.0
        self._lock = threading.Lock()

    # ---- legs

    def add_leg(self, leg_id: str, *, muted: bool = False, listen_only: bool = False) -> None:
        with self._lock:
            if leg_id in self._legs:
                raise ValueError(f"leg {leg_id!r} is already in the mix")
            self._legs[leg_id] = _Leg(muted=muted, listen_only=listen_only)

    def remove_leg(self, leg_id: str) -> LegStats | None:
        """Take the leg out (its later pushes are ignored); its final counters, None if it was not in."""
        with self._lock:
            leg = self._legs.pop(leg_id, None)
        return leg.stats if leg is not None else None

    @property
    def leg_ids(self) -> list[str]:
        with self._lock:
            return list(self._legs)

    def stats(self, leg_id: str) -> LegStats:
        with self._lock:
            return LegStats(**vars(self._leg(leg_id).stats))

    def set_muted(self, leg_id: str, muted: bool) -> None:
        with self._lock:
            self._leg(leg_id).muted = muted

    def set_listen_only(self, leg_id: str, listen_only: bool) -> None:
        with self._lock:
            self._leg(leg_id).listen_only = listen_only

    def is_muted(self, leg_id: str) -> bool:
        with self._lock:
            return self._leg(leg_id).muted

    def is_listen_only(self, leg_id: str) -> bool:
        with self._lock:
            return self._leg(leg_id).listen_only

    def _leg(self, leg_id: str) -> _Leg:
        try:
            return self._legs[leg_id]
        except KeyError:
            raise KeyError(f"no leg {leg_id!r} in the mix") from None

    # ---- audio in

    def push(self, leg_id: str, frame: bytes) -> None:
        """A 20 ms frame (320 bytes) the leg's party said; ignored once the leg was removed."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes of 16-bit PCM, got {len(frame)}")
        with self._lock:
            leg = self._legs.get(leg_id)
            if leg is None:
                return
            leg.stats.frames_received += 1
            leg.queue.append(frame)
            if len(leg.queue) > self.max_queued_frames:
                leg.queue.popleft()
                leg.stats.frames_dropped += 1

    def play_to(self, leg_id: str, pcm: bytes) -> None:
        """Mix `pcm` (16-bit, any length; the last frame padded) into this leg's output only."""
        frames = [pcm[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm) - len(pcm) % 2,
                                                                               FRAME_BYTES)]
        with self._lock:
            self._leg(leg_id).prompt.extend(frames)

    def prompt_frames(self, leg_id: str) -> int:
        """Frames of prompt still to be mixed into the leg's output."""
        with self._lock:
            return len(self._leg(leg_id).prompt)

    def clear_prompt(self, leg_id: str) -> None:
        with self._lock:
            self._leg(leg_id).prompt.clear()

    # ---- the tick

    def mix(self, *, with_mixed: bool = True) -> Mixed:
        """Take one frame from every leg and produce what each one hears (called once per 20 ms). Without
        `with_mixed` (nobody records the conference) the whole-conference signal is not computed."""
        with self._lock:
            legs = list(self._legs.items())
            if not legs:
                return Mixed({}, {}, SILENCE_FRAME)
            said = []
            for _, leg in legs:
                frame = leg.take(self.prebuffer_frames)
                said.append(frame if frame is not None and leg.speaks else SILENCE_FRAME)
                leg.stats.frames_out += 1
            rows = len(legs)
            contributions = np.frombuffer(b"".join(said), dtype="<i2").reshape(rows, FRAME_SAMPLES).astype(np.int32)
            total = contributions.sum(axis=0)
            heard = total - contributions  # everyone but oneself
            if any(leg.prompt for _, leg in legs):
                prompts = b"".join(leg.prompt.popleft() if leg.prompt else SILENCE_FRAME for _, leg in legs)
                heard += np.frombuffer(prompts, dtype="<i2").reshape(rows, FRAME_SAMPLES)
            gains = [leg.gain for _, leg in legs]
            if min(gains) >= 1.0 and int(np.abs(heard).max()) <= FULL_SCALE:  # the usual case: nothing to limit
                heard_bytes = heard.astype("<i2").tobytes()
            else:
                limited, new_gains = self._limit(heard, np.array(gains))
                for (_, leg), gain in zip(legs, new_gains):
                    leg.gain = float(gain)
                heard_bytes = limited.tobytes()
            mixed = SILENCE_FRAME
            if with_mixed:
                limited_total, mixed_gain = self._limit(total[np.newaxis, :], np.array([self._mixed_gain]))
                self._mixed_gain = float(mixed_gain[0])
                mixed = limited_total.tobytes()
            return Mixed(outputs={leg_id: heard_bytes[row * FRAME_BYTES:(row + 1) * FRAME_BYTES]
                                  for row, (leg_id, _) in enumerate(legs)},
                         inputs={leg_id: said[row] for row, (leg_id, _) in enumerate(legs)},
                         mixed=mixed)

    def _limit(self, signal: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of int32 sums -> int16 within full scale, with per-row gain state (attack at once, release
        by `release_per_frame` per tick, ramped across the frame)."""
        peaks = np.abs(signal).max(axis=1)
        targets = np.minimum(1.0, FULL_SCALE / np.maximum(peaks, 1))
        if gains.min() >= 1.0 and targets.min() >= 1.0:  # the usual case: nothing to limit
            return signal.astype("<i2"), gains
        attack = targets < gains
        new = np.where(attack, targets, np.minimum(targets, gains + self.release_per_frame))
        start = np.where(attack, new, gains)
        ramp = start[:, np.newaxis] + (new - start)[:, np.newaxis] * _RAMP[np.newaxis, :]
        limited = np.clip(np.rint(signal * ramp), -FULL_SCALE - 1, FULL_SCALE).astype("<i2")
        return limited, new
