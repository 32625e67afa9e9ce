"""Where one answer of a caller starts and ends, found once, frame by frame, before anything is decoded.

A voice activity detector (webrtcvad, aggressiveness 2) classifies each 20 ms frame of 8 kHz PCM as voice or
not; `Endpointer` turns that into one utterance: it waits up to `timeout` seconds of caller audio for speech,
keeps a short pre-roll so a word's onset is not cut, and ends the utterance after `end_silence` seconds
without voice (or at `max_length`). Frames it hands on for decoding are the utterance's voiced stretches with
the pauses inside them; the silence before the answer and after its last word is never decoded.

Time is counted in audio (frames received, plus silence the caller of `silence()` vouches for when no
frames arrive), not by the wall clock, so a loaded machine does not shorten a caller's time to answer.
"""

from __future__ import annotations

import audioop
from collections import deque
from collections.abc import Callable
from enum import Enum

import webrtcvad

from pcm import FRAME_BYTES, FRAME_SECONDS, SAMPLE_RATE, SAMPLE_WIDTH

PRE_ROLL_FRAMES = 10        # 200 ms kept before the first voiced frame
START_FRAMES = 2            # voiced frames among the last START_WINDOW that start an utterance
START_WINDOW = 3
VAD_AGGRESSIVENESS = 2      # webrtcvad 0 (least) .. 3 (most eager to call a frame non-speech)
MIN_SPEECH_RMS = 150        # quieter frames are never voice (G.711 idle noise, far-away sounds)


def _frames(seconds: float) -> int:
    return max(1, round(seconds / FRAME_SECONDS))


class VoiceActivity:
    """Frame classifier: True for a 20 ms frame of speech."""

    def __init__(self, aggressiveness: int = VAD_AGGRESSIVENESS, min_rms: int = MIN_SPEECH_RMS) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._min_rms = min_rms

    def __call__(self, frame: bytes) -> bool:
        if len(frame) != FRAME_BYTES or audioop.rms(frame, SAMPLE_WIDTH) < self._min_rms:
            return False
        return self._vad.is_speech(frame, SAMPLE_RATE)


class Phase(Enum):
    WAITING = "waiting"      # no speech yet
    SPEAKING = "speaking"    # inside the utterance
    ENDED = "ended"          # the utterance ended (end_silence or max_length)
    TIMED_OUT = "timed_out"  # nobody spoke within `timeout`


class Endpointer:
    """One utterance out of a stream of 20 ms frames.

    `push(frame)` returns the frames to decode now (possibly none); `phase` says where it stands;
    `utterance` is the whole answer as heard (pre-roll to the end, trailing quiet included) for recordings.
    Frames pushed with `queued=True` arrived before listening began (while a prompt played): they are
    listened to but do not count as time waited for an answer.
    """

    def __init__(self, *, timeout: float, end_silence: float, max_length: float,
                 is_voice: Callable[[bytes], bool] | None = None) -> None:
        if min(timeout, end_silence, max_length) <= 0:
            raise ValueError("timeout, end_silence and max_length must be positive seconds")
        # Counted in whole frames: sums of 0.02 s drift in floating point.
        self._timeout_frames = _frames(timeout)
        self._end_frames = _frames(end_silence)
        self._max_frames = _frames(max_length)
        self._is_voice = is_voice or VoiceActivity()
        self.phase = Phase.WAITING
        self._waited = 0
        self._quiet = 0
        self._pre_roll: deque[bytes] = deque(maxlen=PRE_ROLL_FRAMES)
        self._recent: deque[bool] = deque(maxlen=START_WINDOW)
        self._held: list[bytes] = []  # quiet frames inside the utterance, decoded only if voice resumes
        self._utterance: list[bytes] = []
        self.frames_seen = 0
        self.frames_decoded = 0

    @property
    def waited(self) -> float:
        """Seconds of caller audio waited for the answer to start (queued audio not counted)."""
        return self._waited * FRAME_SECONDS

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.ENDED, Phase.TIMED_OUT)

    @property
    def utterance(self) -> bytes:
        return b"".join(self._utterance)

    @property
    def utterance_seconds(self) -> float:
        return len(self._utterance) * FRAME_SECONDS

    def push(self, frame: bytes, *, queued: bool = False) -> list[bytes]:
        """Take one frame; returns what should be decoded now, in order."""
        if self.finished:
            return []
        self.frames_seen += 1
        voiced = self._is_voice(frame)
        if self.phase is Phase.WAITING:
            return self._waiting(frame, voiced, queued)
        return self._speaking(frame, voiced)

    def silence(self, seconds: float) -> None:
        """No audio arrived for `seconds` (a phone that stops sending in silence): count it as quiet."""
        if self.phase is Phase.WAITING:
            self._waited += _frames(seconds)
            if self._waited >= self._timeout_frames:
                self.phase = Phase.TIMED_OUT
        elif self.phase is Phase.SPEAKING:
            self._quiet += _frames(seconds)
            if self._quiet >= self._end_frames:
                self.phase = Phase.ENDED

    def _waiting(self, frame: bytes, voiced: bool, queued: bool) -> list[bytes]:
        self._recent.append(voiced)
        self._pre_roll.append(frame)
        if voiced and sum(self._recent) >= START_FRAMES:
            self.phase = Phase.SPEAKING
            self._utterance = list(self._pre_roll)
            self._pre_roll.clear()
            return self._decode(list(self._utterance))
        if not queued:
            self._waited += 1
            if self._waited >= self._timeout_frames:
                self.phase = Phase.TIMED_OUT
        return []

    def _speaking(self, frame: bytes, voiced: bool) -> list[bytes]:
        self._utterance.append(frame)
        out: list[bytes] = []
        if voiced:
            self._quiet = 0
            out, self._held = self._held + [frame], []
        else:
            self._quiet += 1
            self._held.append(frame)
        if self._quiet >= self._end_frames or len(self._utterance) >= self._max_frames:
            self.phase = Phase.ENDED
        return self._decode(out)

    def _decode(self, frames: list[bytes]) -> list[bytes]:
        self.frames_decoded += len(frames)
        return frames
