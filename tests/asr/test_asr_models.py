"""Model discovery per language, the dither-0 overlay and checksum pinning (file logic; no model loaded)."""

from pathlib import Path

import pytest

from asr import manifest
from asr.errors import ModelIntegrityError, ModelNotFound
from asr.models import ModelRegistry, dither_free_overlay, packaged_korean_model
from asr.settings import AsrSettings


def fake_model(folder: Path) -> Path:
    """The files that make a folder look like a Vosk model to discovery (not loadable)."""
    (folder / "am").mkdir(parents=True)
    (folder / "am" / "final.mdl").write_bytes(b"model")
    (folder / "conf").mkdir()
    (folder / "conf" / "mfcc.conf").write_text("--use-energy=false\n--dither=1.0\n--num-ceps=40\n")
    (folder / "conf" / "model.conf").write_text("--beam=10.0\n")
    (folder / "graph").mkdir()
    return folder


def test_packaged_korean_model_is_found():
    assert (packaged_korean_model() / "graph" / "HCLr.fst").is_file()


def test_languages_from_package_and_models_folder(tmp_path):
    fake_model(tmp_path / "models" / "zh-cn")
    (tmp_path / "models" / "not-a-model").mkdir()
    registry = ModelRegistry(AsrSettings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache"))
    assert registry.available_languages() == ["ko", "zh-cn"]
    assert registry.model_dirs()["zh-cn"] == tmp_path / "models" / "zh-cn"


def test_unknown_language_names_the_folder_to_install_into(tmp_path):
    registry = ModelRegistry(AsrSettings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache"))
    with pytest.raises(ModelNotFound) as error:
        registry.model("zh-cn")
    assert str(tmp_path / "models" / "zh-cn") in str(error.value)
    assert "available: ko" in str(error.value)


def test_overlay_sets_dither_zero_and_leaves_the_model_alone(tmp_path):
    model = fake_model(tmp_path / "model")
    overlay = dither_free_overlay(model, tmp_path / "cache" / "ko")
    assert (overlay / "conf" / "mfcc.conf").read_text() == "--use-energy=false\n--num-ceps=40\n--dither=0\n"
    assert (model / "conf" / "mfcc.conf").read_text() == "--use-energy=false\n--dither=1.0\n--num-ceps=40\n"
    assert (overlay / "am").resolve() == (model / "am").resolve()
    assert (overlay / "conf" / "model.conf").read_text() == "--beam=10.0\n"
    # Built again (another process, a restart): the same overlay, no staging folders left behind.
    assert dither_free_overlay(model, overlay) == overlay
    assert sorted(p.name for p in overlay.parent.iterdir()) == ["ko"]


def test_installed_korean_model_matches_its_pinned_checksums():
    manifest.verify(packaged_korean_model(), manifest.KO_MANIFEST)


def test_changed_missing_and_extra_files_are_named(tmp_path):
    model = fake_model(tmp_path / "model")
    pins = tmp_path / "pins.sha256"
    manifest.write_manifest(model, pins)
    manifest.verify(model, pins)
    (model / "conf" / "model.conf").write_text("--beam=13.0\n")
    (model / "am" / "final.mdl").unlink()
    (model / "graph" / "extra.fst").write_bytes(b"x")
    with pytest.raises(ModelIntegrityError) as error:
        manifest.verify(model, pins)
    assert "missing am/final.mdl; unexpected graph/extra.fst; changed conf/model.conf" in str(error.value)


def test_malformed_manifest_line_is_named(tmp_path):
    (tmp_path / "pins.sha256").write_text("abc  am/final.mdl\n")
    with pytest.raises(ValueError, match=r"pins\.sha256:1"):
        manifest.read_manifest(tmp_path / "pins.sha256")


def test_overlay_sets_the_decoder_limits_in_model_conf(tmp_path):
    model = fake_model(tmp_path / "model")
    overlay = dither_free_overlay(model, tmp_path / "cache" / "ko-fast", {"beam": 8, "max-active": 1000})
    assert (overlay / "conf" / "model.conf").read_text() == "--beam=8\n--max-active=1000\n"
    assert (model / "conf" / "model.conf").read_text() == "--beam=10.0\n"
    assert (overlay / "conf" / "mfcc.conf").read_text().endswith("--dither=0\n")
    # Other settings, another overlay: the first one is rebuilt, never reused with the wrong limits.
    assert dither_free_overlay(model, overlay, {"beam": 6}) == overlay
    assert (overlay / "conf" / "model.conf").read_text() == "--beam=6\n"
