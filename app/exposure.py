"""Start-up safety: a node reachable beyond loopback refuses the credentials anyone can read in this
repository, and a bootstrap admin token short enough to guess.

`make run` works out of the box on loopback with the example's passwords (`change-me`, `test1001`...) and,
when no admin token is configured, one generated at the first start (app.first_run). Once the SIP side
([sip] local_ip or registrar_host) or the HTTP side ([server] http_host) leaves loopback, those defaults
would let anyone register as the IVR or a test extension, or take the operator seat: the node then refuses
to start, naming each key to change (issue 8, finding 7).
"""
from __future__ import annotations

import ipaddress
import re

from app.config import NodeConfig
from inifile import ConfigError

#: Every password sip.conf.example ships ([sip] password, [test_extensions]); tests/app check the example
#: against this list, so a new example value cannot slip through.
KNOWN_DEFAULT_PASSWORDS = frozenset({"change-me", "test1001", "test1002", "test1003"})
_TEST_PASSWORD = re.compile(r"test\d*", re.IGNORECASE)  # the example's pattern: test1001, test1004, test...
MIN_ADMIN_TOKEN_LENGTH = 32


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1); any other name or address (0.0.0.0
    listens everywhere) counts as reachable from elsewhere."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def exposure(config: NodeConfig) -> list[str]:
    """The settings that put the node beyond loopback, as `[section] key = value` ([] on loopback)."""
    sides = [("sip", "local_ip", config.sip.local_ip), ("sip", "registrar_host", config.sip.registrar_host),
             ("server", "http_host", config.server.http_host)]
    return [f"[{section}] {key} = {value}" for section, key, value in sides if not is_loopback(value)]


def is_default_password(password: str) -> bool:
    return password in KNOWN_DEFAULT_PASSWORDS or bool(_TEST_PASSWORD.fullmatch(password))


def check_exposure(config: NodeConfig) -> None:
    """Raise ConfigError naming every key to change when the node is beyond loopback with a shipped
    password, a short or empty admin token, or a test extension as the operator seat."""
    exposed = exposure(config)
    if not exposed:
        return
    problems = []
    if is_default_password(config.sip.password):
        problems.append(f"[sip] password is the shipped default {config.sip.password!r}")
    problems += [f"[test_extensions] {extension} has the shipped default password {password!r}"
                 for extension, password in config.sip.test_extensions.items() if is_default_password(password)]
    if len(config.server.admin_token) < MIN_ADMIN_TOKEN_LENGTH:
        problems.append(f"[server] admin_token must be at least {MIN_ADMIN_TOKEN_LENGTH} characters "
                        f"(it is {len(config.server.admin_token)}); e.g. python -c 'import secrets; "
                        f"print(secrets.token_urlsafe(32))'")
    if config.callflows.operator_seat in config.sip.test_extensions:
        problems.append(f"[callflows] operator_seat {config.callflows.operator_seat} is a test extension "
                        f"([test_extensions]): give the operator seat its own extension")
    if problems:
        raise ConfigError(f"{config.path}: the node is reachable beyond loopback ({', '.join(exposed)}), so it "
                          f"refuses what ships in sip.conf.example:\n  " + "\n  ".join(problems))
