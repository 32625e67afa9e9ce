"""The first start of a node: the secrets it makes for itself (an admin token on loopback, the console's
session key) and what the user is told about them.

`make run` on a fresh clone has no `[server] admin_token`, so neither the API nor the operator console
would let anyone in. On loopback (app.exposure refuses an empty token anywhere else) the first start
generates a token, keeps it in `[server] admin_token_file` (var/admin_token, readable by its owner only),
stores its hash like any API token, and says where it is and where the console is; later starts reuse it.
Delete the file for a new one (the old token stays valid until revoked through the API).
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.config import ROOT, NodeConfig


def read_or_create_secret(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The secret kept in `path`, made with `make()` and written readable by its owner only (0600) when the
    file does not exist yet; returns it and whether it was made now. Two processes starting together agree
    on the first one written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="ascii", opener=lambda name, flags: os.open(name, flags, 0o600)) as file:
            secret = make()
            file.write(secret + "\n")
        return secret, True
    except FileExistsError:
        return path.read_text(encoding="ascii").strip(), False


@dataclass(frozen=True)
class AdminToken:
    token: str
    kept_in: Path | None = None  # the file of a generated token; None when [server] admin_token is set
    generated_now: bool = False


def admin_token(config: NodeConfig) -> AdminToken:
    """[server] admin_token when set, else the token kept in admin_token_file (made on the first start)."""
    if config.server.admin_token:
        return AdminToken(config.server.admin_token)
    path = ROOT / config.server.admin_token_file
    token, made = read_or_create_secret(path, lambda: secrets.token_urlsafe(32))
    return AdminToken(token, path, made)


def console_secret(config: NodeConfig) -> bytes:
    """The key that signs console sessions: [server] console_secret, else one made at the first start and
    kept in var/console-secret (readable by its owner only). Nodes behind one address need the same one."""
    if config.server.console_secret:
        return config.server.console_secret.encode()
    secret, _ = read_or_create_secret(ROOT / "var" / "console-secret", lambda: secrets.token_hex(32))
    return secret.encode()


def console_address(config: NodeConfig) -> str:
    return f"http://{config.server.http_host}:{config.server.http_port}/"


def first_run_notice(token: AdminToken, config: NodeConfig) -> str | None:
    """What a user starting the node must be told: where the generated token is and where to use it."""
    if token.kept_in is None:
        return None
    made = "generated an admin token (first start) in" if token.generated_now else "the admin token is in"
    return (f"{made} {token.kept_in} (readable by you only): sign in to the operator console at "
            f"{console_address(config)} with it, or send it to the API as 'Authorization: Bearer <token>'")
