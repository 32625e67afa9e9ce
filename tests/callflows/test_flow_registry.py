"""Hot reload: new calls get the edited flow, calls in progress keep theirs, broken edits are refused."""
from __future__ import annotations

import logging
import os

import pytest

from callflow_fakes import Harness, Keys, ScriptedCall
from callflows.issues import FlowError
from callflows.registry import FlowRegistry

FLOW = """languages: [zh]
start: hello
nodes:
  hello: {{kind: play, prompt: {{zh: {greeting}}}, next: bye}}
  bye: {{kind: hangup}}
"""


def edit(path, text):
    """Write and move the mtime on, as a later edit would (some file systems keep coarse mtimes)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_unchanged_file_gives_the_same_version(tmp_path):
    edit(tmp_path / "main.yaml", FLOW.format(greeting="您好"))
    registry = FlowRegistry(tmp_path)
    first = registry.get("main")
    assert registry.get("main") is first
    os.utime(tmp_path / "main.yaml")  # touched, not changed
    assert registry.get("main") is first


def test_new_calls_get_the_edit_and_calls_in_progress_keep_their_version(tmp_path):
    path = tmp_path / "main.yaml"
    edit(path, FLOW.format(greeting="您好"))
    registry = FlowRegistry(tmp_path)
    in_progress = registry.get("main")
    edit(path, FLOW.format(greeting="欢迎致电"))
    new = registry.get("main")
    old_call, new_call = ScriptedCall(), ScriptedCall()
    Harness().run(in_progress, old_call)
    Harness().run(new, new_call)
    assert old_call.texts() == ["zh:您好"]
    assert new_call.texts() == ["zh:欢迎致电"]


def test_broken_edit_is_refused_logged_once_and_the_old_version_kept(tmp_path, caplog):
    path = tmp_path / "main.yaml"
    edit(path, FLOW.format(greeting="您好"))
    registry = FlowRegistry(tmp_path)
    good = registry.get("main")
    edit(path, FLOW.format(greeting="您好").replace("next: bye", "next: gone"))
    with caplog.at_level(logging.ERROR, logger="callflows.registry"):
        assert registry.get("main") is good
        assert registry.get("main") is good
    refusals = [record.getMessage() for record in caplog.records]
    assert refusals == [f"flow main: edit refused, calls keep the previous version:\n"
                        f"{path}:4: 'next' of play node 'hello' points to 'gone', which is not a node of this flow\n"
                        f"{path}:5: node 'bye' is unreachable from start 'hello'"]
    edit(path, FLOW.format(greeting="修好了"))
    fixed = registry.get("main")
    call = ScriptedCall()
    Harness().run(fixed, call)
    assert call.texts() == ["zh:修好了"]


def test_editing_a_subflow_reloads_the_flow_that_uses_it(tmp_path):
    edit(tmp_path / "sub.yaml", "languages: [zh]\nstart: a\nnodes:\n  a: {kind: play, prompt: {zh: 一}, next: r}\n"
                                "  r: {kind: return}\n")
    edit(tmp_path / "main.yaml", "languages: [zh]\nstart: s\nnodes:\n  s: {kind: subflow, flow: sub, next: e}\n"
                                 "  e: {kind: hangup}\n")
    registry = FlowRegistry(tmp_path)
    registry.get("main")
    edit(tmp_path / "sub.yaml", (tmp_path / "sub.yaml").read_text(encoding="utf-8").replace("一", "二"))
    call = ScriptedCall(Keys(""))
    Harness().run(registry.get("main"), call)
    assert call.texts() == ["zh:二"]


def test_a_flow_that_never_loaded_cleanly_raises(tmp_path):
    edit(tmp_path / "main.yaml", "languages: [zh]\nstart: nowhere\nnodes: {}\n")
    with pytest.raises(FlowError, match="start points to 'nowhere'"):
        FlowRegistry(tmp_path).get("main")
