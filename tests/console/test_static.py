"""The console works without internet access: no page or script names another host, the vendored Mermaid
is the file its provenance note names, and every text the templates use exists in both languages."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from console.i18n import LANGUAGES, MESSAGES, translate

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def test_no_template_style_or_script_loads_anything_from_another_host():
    own = [p for p in (CONSOLE / "templates").iterdir()] + [
        p for p in (CONSOLE / "static").iterdir() if p.is_file()]
    for path in own:
        text = path.read_text(encoding="utf-8")
        urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)
                if not u.startswith("http://www.w3.org/2000/svg")]
        assert urls == [], f"{path.name} names another host: {urls}"


def test_vendored_mermaid_is_the_file_of_its_provenance_note():
    folder = CONSOLE / "static" / "vendor" / "mermaid"
    note = (folder / "PROVENANCE.md").read_text(encoding="utf-8")
    expected = re.search(r"SHA-256: `([0-9a-f]{64})`", note).group(1)
    assert hashlib.sha256((folder / "mermaid.min.js").read_bytes()).hexdigest() == expected
    assert "MIT" in (folder / "LICENSE").read_text(encoding="utf-8")


def test_every_text_the_templates_use_exists_in_both_languages():
    used: set[str] = set()
    for path in (CONSOLE / "templates").iterdir():
        used.update(re.findall(r"""\bt\(["']([a-z_.]+)["']""", path.read_text(encoding="utf-8")))
    used = {key for key in used if not key.endswith(".")}  # prefixes of names built in the template
    missing = sorted(key for key in used if key not in MESSAGES)
    assert missing == []
    assert len(used) > 60
    for key, texts in MESSAGES.items():
        assert len(texts) == len(LANGUAGES) and all(texts), key


@pytest.mark.parametrize("prefix, values", [("status.", "draft received answered not_accepted dispatched signed "
                                            "in_progress reply_review replied callback_done closed archived escalated"),
                                            ("action.", "submit answer_directly reject dispatch sign start reply "
                                             "approve_reply return_reply callback close archive escalate return_misrouted reopen")])
def test_every_status_and_action_has_a_name(prefix, values):
    from tickets.lifecycle import Action, Status
    enum = Status if prefix == "status." else Action
    assert sorted(values.split()) == sorted(member.value for member in enum)
    for value in values.split():
        assert translate(prefix + value, "zh") and translate(prefix + value, "en")
