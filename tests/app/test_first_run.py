"""app.first_run: the admin token a node makes on its first start (loopback), kept readable by its owner only
and reused afterwards; a configured token is used as it is."""
from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

from app.config import load_config
from app.first_run import admin_token, first_run_notice, read_or_create_secret

EXAMPLE = Path(__file__).resolve().parents[2] / "sip.conf.example"


def test_the_first_start_makes_a_token_file_only_its_owner_reads_and_later_starts_reuse_it(tmp_path):
    config = load_config(EXAMPLE)
    config = replace(config, server=replace(config.server, admin_token_file=str(tmp_path / "var" / "admin_token")))
    first = admin_token(config)
    assert first.generated_now and first.kept_in == tmp_path / "var" / "admin_token" and len(first.token) >= 32
    assert stat.S_IMODE(first.kept_in.stat().st_mode) == 0o600
    assert first.kept_in.read_text(encoding="ascii") == first.token + "\n"
    again = admin_token(config)
    assert (again.token, again.generated_now) == (first.token, False)
    assert first_run_notice(first, config) == (
        f"generated an admin token (first start) in {first.kept_in} (readable by you only): sign in to the operator "
        f"console at http://127.0.0.1:8080/ with it, or send it to the API as 'Authorization: Bearer <token>'")
    assert first_run_notice(again, config).startswith(f"the admin token is in {first.kept_in} ")


def test_a_configured_token_is_used_and_no_file_is_made(tmp_path):
    config = load_config(EXAMPLE)
    config = replace(config, server=replace(config.server, admin_token="x" * 40,
                                            admin_token_file=str(tmp_path / "admin_token")))
    token = admin_token(config)
    assert (token.token, token.kept_in) == ("x" * 40, None)
    assert first_run_notice(token, config) is None and not (tmp_path / "admin_token").exists()


def test_a_secret_made_elsewhere_first_is_the_one_kept(tmp_path):
    path = tmp_path / "secret"
    path.write_text("made by the other process\n", encoding="ascii")
    assert read_or_create_secret(path, lambda: "mine") == ("made by the other process", False)
