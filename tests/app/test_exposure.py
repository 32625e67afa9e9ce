"""Start-up safety (app.exposure): beyond loopback, the node refuses what ships in sip.conf.example and a
short admin token, naming each key; on loopback the example runs as it is."""
from __future__ import annotations

import configparser
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import NodeConfig, load_config
from app.exposure import check_exposure, exposure, is_default_password, is_loopback
from inifile import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "sip.conf.example"
STRONG = "n7Vq-2rXbW8s_LmT4kPz9yHc1DfGhJ0a"  # 32 characters


def exposed_and_safe() -> NodeConfig:
    """The example moved onto a LAN address with every shipped secret changed: starts."""
    config = load_config(EXAMPLE)
    return replace(config, sip=replace(config.sip, local_ip="192.0.2.10", password=STRONG + "ivr",
                                       test_extensions={"1001": STRONG + "1001"}),
                   server=replace(config.server, admin_token=STRONG),
                   callflows=replace(config.callflows, operator_seat="8000"))


def test_every_password_the_example_ships_is_known():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE, encoding="utf-8")
    shipped = [parser["sip"]["password"], *parser["test_extensions"].values()]
    assert shipped and all(is_default_password(password) for password in shipped)
    assert not is_default_password(STRONG)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("192.0.2.10", False),
                                            ("::", False), ("sip.example.org", False)])
def test_loopback_is_localhost_and_loopback_addresses_only(host, loopback):
    assert is_loopback(host) is loopback


def test_the_example_on_loopback_is_accepted_as_it_is():
    config = load_config(EXAMPLE)
    assert exposure(config) == []
    check_exposure(config)


def test_a_node_beyond_loopback_with_its_own_secrets_is_accepted():
    config = exposed_and_safe()
    assert exposure(config) == ["[sip] local_ip = 192.0.2.10"]
    check_exposure(config)


@pytest.mark.parametrize("change, named", [
    (lambda c: replace(c, sip=replace(c.sip, password="change-me")), "[sip] password is the shipped default"),
    (lambda c: replace(c, sip=replace(c.sip, test_extensions={"1004": "test1004"})),
     "[test_extensions] 1004 has the shipped default password"),
    (lambda c: replace(c, server=replace(c.server, admin_token="")), "[server] admin_token must be at least 32"),
    (lambda c: replace(c, server=replace(c.server, admin_token=STRONG[:31])),
     "[server] admin_token must be at least 32 characters (it is 31)"),
    (lambda c: replace(c, callflows=replace(c.callflows, operator_seat="1001")),
     "[callflows] operator_seat 1001 is a test extension"),
])
@pytest.mark.parametrize("side", ["sip local_ip", "sip registrar_host", "server http_host"])
def test_each_shipped_default_is_refused_beyond_loopback_by_its_key(change, named, side):
    config = exposed_and_safe()
    section, key = side.split()
    config = replace(config, sip=replace(config.sip, local_ip="127.0.0.1"))  # only `side` leaves loopback
    config = replace(config, **{section: replace(getattr(config, section), **{key: "0.0.0.0"})})
    with pytest.raises(ConfigError) as error:
        check_exposure(change(config))
    assert named in str(error.value) and f"[{section}] {key} = 0.0.0.0" in str(error.value)
