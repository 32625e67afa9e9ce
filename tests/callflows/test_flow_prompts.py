"""The flows' side of text to speech (callflows.prompts.PromptLibrary) over the real tts edge."""
from __future__ import annotations

import wave
from pathlib import Path

import callflows
from callflows.bundle import load_bundle
from callflows.model import Prompt
from callflows.prompts import PromptLibrary
from callflows.templates import placeholders, spoken_numbers
from tts import PromptSynthesizer

HOTLINE = Path(callflows.__file__).parent / "flows" / "hotline12345.yaml"


def test_recorded_wav_overrides_the_text(tmp_path):
    library = PromptLibrary(PromptSynthesizer(tmp_path / "cache"))
    recorded = tmp_path / "greeting.wav"
    assert library.recorded(recorded) == recorded
    assert not (tmp_path / "cache").exists()


def test_digits_in_a_mandarin_prompt_are_spoken_as_chinese_numbers(tmp_path):
    synthesizer = PromptSynthesizer(tmp_path)
    path = PromptLibrary(synthesizer).text("转接110请按9", "zh")
    assert path == synthesizer.cache_path("转接幺幺零请按九", "zh")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_prewarm_synthesises_every_fixed_prompt_of_the_shipped_flow(tmp_path):
    library = PromptLibrary(PromptSynthesizer(tmp_path))
    bundle = load_bundle(HOTLINE)
    warmed = library.prewarm(bundle.main)
    files = list(tmp_path.glob("*.wav"))
    assert len(warmed) >= 30
    assert warmed == set(files) == {library.synthesizer.cache_path(spoken_numbers(t, l), l)
                                    for t, l in _fixed_texts(bundle.main)}
    for path in files:
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)


def _fixed_texts(flow):
    for node in flow.nodes.values():
        for value in vars(node).values():
            if isinstance(value, Prompt):
                for language, text in value.texts.items():
                    if not placeholders(text):
                        yield text, language


def test_a_prompt_with_call_data_is_synthesised_in_memory_and_never_cached(tmp_path):
    synthesizer = PromptSynthesizer(tmp_path / "cache")
    library = PromptLibrary(synthesizer)
    try:
        read_back = "您的工单号是2633600041"
        now = library.variable(read_back, "zh")
        ahead = library.prefetch(read_back, "zh").result(timeout=60)
    finally:
        library.close()
    assert now == ahead and len(now) > 8000 * 2  # PCM of the spoken number, more than a second
    assert now == synthesizer.pcm(spoken_numbers(read_back, "zh"), "zh")  # digits spoken as Chinese numbers
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []
