"""pcm, the audio contract: reading WAV files into 8 kHz 16-bit mono (and the clear errors for files that
cannot be), writing them, turning any playable audio into the format, and the frame arithmetic."""

import array
import math
import wave

import pytest
from pydub import AudioSegment
from pydub.generators import Sine

import pcm
from pcm import AudioFileError, frames, read_wav, to_pcm


def write_wav(path, *, rate, width=2, channels=1, seconds=0.5, freq=440.0):
    n = int(rate * seconds)
    samples = [int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]
    if width == 2:
        data = array.array("h", [s for s in samples for _ in range(channels)]).tobytes()
    else:
        data = bytes([(s >> 8) + 128 for s in samples for _ in range(channels)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels), w.setsampwidth(width), w.setframerate(rate)
        w.writeframes(data)
    return path


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_any_rate_is_resampled_to_8khz(tmp_path, rate):
    pcm = read_wav(write_wav(tmp_path / "a.wav", rate=rate, seconds=0.5))
    assert abs(len(pcm) - 8000) <= 4  # 0.5 s at 8 kHz, 2 bytes per sample


def test_stereo_and_8bit_become_16bit_mono(tmp_path):
    pcm = read_wav(write_wav(tmp_path / "a.wav", rate=8000, width=1, channels=2, seconds=0.25))
    samples = array.array("h", pcm)
    assert len(samples) == 2000
    assert 7000 < max(samples) < 9000  # the 8000-amplitude sine survives, scaled to 16-bit


def test_wrong_rate_is_an_error_where_a_rate_is_required(tmp_path):
    path = write_wav(tmp_path / "a.wav", rate=16000)
    with pytest.raises(AudioFileError, match=r"a\.wav: sample rate 16000 Hz, expected 8000 Hz"):
        read_wav(path, require_rate=True)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioFileError, match=r"empty\.wav: empty file"):
        read_wav(tmp_path / "empty.wav")


def test_wav_without_audio(tmp_path):
    path = write_wav(tmp_path / "zero.wav", rate=8000, seconds=0)
    with pytest.raises(AudioFileError, match="holds no audio"):
        read_wav(path)


def test_non_audio_file(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 10)
    with pytest.raises(AudioFileError, match=r"notes\.wav: not a PCM WAV file"):
        read_wav(tmp_path / "notes.wav")


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileError, match="no such file"):
        read_wav(tmp_path / "nope.wav")


def test_frames_are_20ms():
    chunks = frames(b"\1\0" * 400)
    assert [len(c) for c in chunks] == [320, 320, 160]


def test_to_pcm_converts_any_format_to_8khz_16bit_mono(tmp_path):
    tone = Sine(440).to_audio_segment(duration=500).set_frame_rate(44100).set_channels(2)
    path = tmp_path / "prompt.mp3"
    tone.export(path, format="mp3")
    pcm = to_pcm(path)
    assert abs(len(pcm) - 8000) <= 2 * 1200  # ~0.5 s at 8 kHz 16-bit, allowing mp3 padding
    assert to_pcm(AudioSegment.silent(duration=100, frame_rate=16000)) == bytes(1600)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        to_pcm(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="even number"):
        to_pcm(b"\x00\x01\x02")


def test_the_frame_constants_agree_with_each_other():
    assert (pcm.SAMPLE_RATE, pcm.SAMPLE_WIDTH, pcm.FRAME_SAMPLES, pcm.FRAME_BYTES) == (8000, 2, 160, 320)
    assert pcm.FRAME_SAMPLES == round(pcm.SAMPLE_RATE * pcm.FRAME_SECONDS)
    assert pcm.SILENCE_FRAME == bytes(320)


def test_written_wav_reads_back_the_same_samples(tmp_path):
    samples = array.array("h", [0, 1, -1, 32767, -32768] * 64).tobytes()
    path = pcm.write_wav(tmp_path / "deep" / "folder" / "a.wav", samples)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
    assert read_wav(path, require_rate=True) == samples
    assert pcm.seconds(samples) == len(samples) / 16000
