"""three_way.mixer: each leg hears exactly the sum of the others (never itself), loud sums are limited
instead of wrapping, a late/lost/silent leg never holds the others up, legs come and go, mute and
listen-only, prompts to one leg, bounded queues; and a frequency analysis of three tones."""
from __future__ import annotations

import numpy as np
import pytest

from pcm import FRAME_BYTES, FRAME_SAMPLES, SILENCE_FRAME
from three_way.mixer import Mixer

RATE = 8000


def constant(value: int) -> bytes:
    return np.full(FRAME_SAMPLES, value, dtype="<i2").tobytes()


def samples(frame: bytes) -> np.ndarray:
    return np.frombuffer(frame, dtype="<i2").astype(np.int32)


def tone_frames(hz: float, count: int, amplitude: int = 8000) -> list[bytes]:
    t = np.arange(count * FRAME_SAMPLES) / RATE
    pcm = (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()
    return [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def strength(pcm: bytes, hz: float) -> float:
    """Share of the signal's energy at `hz` (0..1)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if not x.any():
        return 0.0
    t = np.arange(x.size) / RATE
    return float(abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) ** 2 * 2 / x.size / np.dot(x, x))


def primed_mixer(*legs: str, **options) -> Mixer:
    mixer = Mixer(prebuffer_frames=1, **options)
    for leg in legs:
        mixer.add_leg(leg)
    return mixer


def test_each_leg_hears_the_exact_sum_of_the_others_and_never_itself():
    mixer = primed_mixer("a", "b", "c")
    mixer.push("a", constant(100))
    mixer.push("b", constant(20))
    mixer.push("c", constant(3))
    result = mixer.mix()
    assert samples(result.outputs["a"]).tolist() == [23] * FRAME_SAMPLES
    assert samples(result.outputs["b"]).tolist() == [103] * FRAME_SAMPLES
    assert samples(result.outputs["c"]).tolist() == [120] * FRAME_SAMPLES
    assert samples(result.mixed).tolist() == [123] * FRAME_SAMPLES
    assert result.inputs == {"a": constant(100), "b": constant(20), "c": constant(3)}


def test_a_leg_alone_hears_silence():
    mixer = primed_mixer("a")
    mixer.push("a", constant(5000))
    assert mixer.mix().outputs == {"a": SILENCE_FRAME}


def test_three_tones_each_leg_hears_the_other_two_and_not_its_own():
    tones = {"citizen": 440, "seat": 1200, "operator": 2000}
    mixer = primed_mixer(*tones)
    frames = {leg: tone_frames(hz, 50) for leg, hz in tones.items()}
    heard: dict[str, bytearray] = {leg: bytearray() for leg in tones}
    for tick in range(50):
        for leg in tones:
            mixer.push(leg, frames[leg][tick])
        for leg, out in mixer.mix().outputs.items():
            heard[leg] += out
    for leg, own in tones.items():
        assert strength(bytes(heard[leg]), own) < 0.001
        for other, hz in tones.items():
            if other != leg:
                assert strength(bytes(heard[leg]), hz) > 0.4


def test_loud_parties_are_limited_not_wrapped_and_the_gain_recovers():
    mixer = primed_mixer("a", "b", "c")
    for _ in range(3):
        for leg in ("a", "b", "c"):
            mixer.push(leg, constant(30000))
        result = mixer.mix()
        out = samples(result.outputs["a"])
        assert out.min() > 0 and out.max() <= 32767  # 60000 would have wrapped to negative
        assert out.max() > 30000  # limited to full scale, not muffled
        assert samples(result.mixed).min() > 0
    recovered = []
    for _ in range(30):  # quiet again: the gain climbs back without a jump
        for leg in ("a", "b", "c"):
            mixer.push(leg, constant(1000))
        recovered.append(samples(mixer.mix().outputs["a"]))
    assert recovered[0].max() < 2000  # still turned down right after the loud part
    assert all(np.diff(frame).min() >= 0 for frame in recovered[:5])  # ramped within the frame, no steps down
    assert recovered[-1].tolist() == [2000] * FRAME_SAMPLES


def test_a_silent_or_late_leg_contributes_silence_and_the_others_go_on():
    mixer = primed_mixer("a", "b", "late")
    for tick in range(10):
        mixer.push("a", constant(10))
        mixer.push("b", constant(1))
        result = mixer.mix()
        assert samples(result.outputs["a"]).tolist() == [1] * FRAME_SAMPLES
        assert samples(result.outputs["late"]).tolist() == [11] * FRAME_SAMPLES
    assert mixer.stats("late").frames_missing == 10
    mixer.push("late", constant(100))  # arrives after all: heard from the next tick
    mixer.push("a", constant(10))
    mixer.push("b", constant(1))
    assert samples(mixer.mix().outputs["a"]).tolist() == [101] * FRAME_SAMPLES


def test_a_lost_frame_is_a_silent_tick_not_a_stall_and_prebuffering_resumes():
    mixer = Mixer(prebuffer_frames=2)
    mixer.add_leg("a")
    mixer.add_leg("b")
    mixer.push("a", constant(7))
    assert samples(mixer.mix().outputs["b"]).tolist() == [0] * FRAME_SAMPLES  # priming: one frame is not enough
    mixer.push("a", constant(8))
    assert samples(mixer.mix().outputs["b"])[0] == 7
    assert samples(mixer.mix().outputs["b"])[0] == 8
    assert samples(mixer.mix().outputs["b"])[0] == 0  # ran dry (a packet lost): silence, next tick comes anyway
    mixer.push("a", constant(9))
    assert samples(mixer.mix().outputs["b"])[0] == 0  # waits for its slack again
    mixer.push("a", constant(10))
    assert [samples(mixer.mix().outputs["b"])[0] for _ in range(2)] == [9, 10]
    stats = mixer.stats("a")
    assert (stats.frames_received, stats.frames_mixed, stats.frames_missing) == (4, 4, 3)


def test_a_fast_sender_has_its_oldest_frames_dropped_so_its_delay_stays_bounded():
    mixer = Mixer(prebuffer_frames=1, max_queued_frames=3)
    mixer.add_leg("fast")
    mixer.add_leg("b")
    for value in range(1, 7):
        mixer.push("fast", constant(value))
    assert [samples(mixer.mix().outputs["b"])[0] for _ in range(3)] == [4, 5, 6]
    assert mixer.stats("fast").frames_dropped == 3


def test_legs_join_and_leave_at_any_time():
    mixer = primed_mixer("a", "b")
    mixer.push("a", constant(1))
    mixer.push("b", constant(2))
    assert set(mixer.mix().outputs) == {"a", "b"}
    mixer.add_leg("c")
    mixer.push("c", constant(4))
    mixer.push("a", constant(1))
    result = mixer.mix()
    assert samples(result.outputs["a"])[0] == 4 and samples(result.outputs["c"])[0] == 1
    stats = mixer.remove_leg("a")
    assert stats is not None and stats.frames_mixed == 2
    mixer.push("a", constant(1000))  # a late frame of a leg that left is ignored
    mixer.push("b", constant(2))
    mixer.push("c", constant(4))
    result = mixer.mix()
    assert set(result.outputs) == {"b", "c"} and samples(result.outputs["b"])[0] == 4
    assert mixer.remove_leg("a") is None
    with pytest.raises(ValueError):
        mixer.add_leg("b")
    mixer.remove_leg("b")
    mixer.remove_leg("c")
    assert mixer.mix().outputs == {}


def test_muted_and_listen_only_legs_hear_everyone_but_are_not_heard():
    mixer = primed_mixer("seat", "citizen")
    mixer.add_leg("coach", listen_only=True)

    def tick() -> dict[str, int]:
        for leg, value in (("seat", 10), ("citizen", 1), ("coach", 500)):
            mixer.push(leg, constant(value))
        result = mixer.mix()
        return {leg: int(samples(frame)[0]) for leg, frame in result.outputs.items()}

    assert tick() == {"seat": 1, "citizen": 10, "coach": 11}  # the coach hears both, nobody hears the coach
    mixer.set_muted("citizen", True)
    assert tick() == {"seat": 0, "citizen": 10, "coach": 10}
    assert mixer.is_muted("citizen") and mixer.is_listen_only("coach")
    mixer.set_listen_only("coach", False)
    mixer.set_muted("citizen", False)
    assert tick() == {"seat": 501, "citizen": 510, "coach": 11}


def test_a_prompt_is_mixed_into_one_legs_output_only_until_it_is_played_out():
    mixer = primed_mixer("a", "b")
    mixer.play_to("a", constant(300) + constant(300)[:100])  # a frame and a bit: the rest padded
    assert mixer.prompt_frames("a") == 2
    heard = []
    for _ in range(3):
        mixer.push("b", constant(5))
        result = mixer.mix()
        assert samples(result.outputs["b"]).tolist() == [0] * FRAME_SAMPLES  # b never hears a's prompt
        heard.append(samples(result.outputs["a"]))
    assert heard[0].tolist() == [305] * FRAME_SAMPLES
    assert heard[1].tolist() == [305] * 50 + [5] * 110
    assert heard[2].tolist() == [5] * FRAME_SAMPLES
    mixer.play_to("a", constant(1) * 10)
    mixer.clear_prompt("a")
    assert mixer.prompt_frames("a") == 0


def test_bad_frames_and_unknown_legs_are_refused_with_a_clear_error():
    mixer = primed_mixer("a")
    with pytest.raises(ValueError, match="320 bytes"):
        mixer.push("a", b"\0" * 100)
    with pytest.raises(KeyError, match="no leg 'x'"):
        mixer.set_muted("x", True)
    with pytest.raises(ValueError):
        Mixer(prebuffer_frames=4, max_queued_frames=2)
