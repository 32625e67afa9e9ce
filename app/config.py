"""The node's configuration: every package's settings from the one INI file, and the checks across them.

[sip] and [test_extensions] are ivr's (ivr.config), [tickets] the ticket rules' (tickets.settings); the
sections only the composition reads are here: [server] (HTTP, database, Redis, folders, the bootstrap
admin token, the console's secret), [callflows] (which call application answers, and the numbers it
transfers to), [retention] (app.retention), [journal] (the node's journal of what callers say) and
[callbacks] (satisfaction callbacks: the schedule is tickets.callbacks', the dialling is the node's).
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path

from app.retention import retention_policy
from inifile import ConfigError, IniFile, SettingError, config_path
from ivr.config import IvrSettings, ivr_settings
from recordings.retention import RetentionPolicy
from tickets import db
from tickets.callbacks import CallbackPolicy
from tickets.settings import TicketSettings, ticket_settings

ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEMO_FLOW = "demo"


@dataclass(frozen=True)
class ServerSettings:
    """The [server] section: everything beside telephony and the call application."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    start_local_sip_server: bool = True
    database_url: str = db.DEFAULT_URL
    redis_url: str = ""  # empty: one node, in-process job locks
    recordings_dir: str = "var/recordings"
    prompt_cache_dir: str = "var/prompts"
    admin_token: str = ""  # stored hashed at start; empty (loopback only): generated into admin_token_file
    admin_token_file: str = "var/admin_token"  # where the first start keeps a generated admin token (0600)
    scheduler_interval_seconds: float = 30.0
    console_secret: str = ""  # signs console sessions; empty: a random one kept in var/console-secret
    node_name: str = ""  # this node among several (shared live calls, logs); empty: the host name
    redis_prefix: str = "hotline12345"  # every Redis key of this cluster starts with it
    live_calls_expiry: float = 10.0  # seconds after which a node that stopped publishing has no calls shown

    def __post_init__(self) -> None:
        if self.node_name and not NAME_RE.match(self.node_name):
            raise SettingError("node_name", f"letters, digits and _.- only (at most 64), got {self.node_name!r}")
        if not NAME_RE.match(self.redis_prefix):
            raise SettingError("redis_prefix", f"letters, digits and _.- only (at most 64), got {self.redis_prefix!r}")
        if not 1.0 <= self.live_calls_expiry <= 3600:
            raise SettingError("live_calls_expiry", "must be 1-3600 seconds")


@dataclass(frozen=True)
class CallflowSettings:
    """The [callflows] section: which call application answers, and the numbers and files it needs."""

    flow: str = "hotline12345"  # a flow file <flows_dir>/<flow>.yaml, or "demo" for ivr's demo menu
    operator_seat: str = "1003"  # SIP number of the human operator seat (0, or a second failure)
    police_number: str = "110"  # SIP number of the 110 desk (9 during the emergency guidance)
    # Numbers whose calls the 110 desk hands over (comma-separated): the calling number, or a number dialled
    # for hand-overs; empty: none. Such a call skips the emergency guidance and its ticket says "referred by 110".
    police_referral_numbers: str = ""
    flows_dir: str = "callflows/flows"
    models_dir: str = "var/models"  # Vosk models, one folder per language (Korean is also packaged)
    # Free-speech answers the recognisers decode in real time at once (0: asr's default per core); callers
    # beyond it are served on keys. Measure with benchmarks/bench_asr.py.
    speech_capacity: float = 0.0
    # Warm the free-speech recognisers at start on the flow's prompts (asr.RecognitionPool.warm_up).
    speech_warm_up: bool = True

    def __post_init__(self) -> None:
        for key in ("operator_seat", "police_number"):
            value = getattr(self, key)
            if not value.isdigit():
                raise SettingError(key, f"must be a SIP number (digits), got {value!r}")
        for number in self.referral_numbers:
            if not number.isdigit():
                raise SettingError("police_referral_numbers", f"SIP numbers (digits), comma-separated, got {number!r}")
        if self.flow != DEMO_FLOW:
            flow_file = ROOT / self.flows_dir / f"{self.flow}.yaml"
            if not flow_file.is_file():
                raise SettingError("flow", f"{self.flow!r}: no flow file {flow_file} "
                                           f"(expected {DEMO_FLOW!r} or the name of a .yaml file in flows_dir)")


    @property
    def referral_numbers(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.police_referral_numbers.split(",") if part.strip())


@dataclass(frozen=True)
class JournalSettings:
    """The [journal] section: the node's journal of what callers say (README "Nothing lost")."""

    path: str = "var/journal/node.sqlite3"  # one per node
    reserved_numbers: int = 20  # ticket numbers kept reserved per day for database outages
    replay_interval_seconds: float = 10.0
    keep_days: int = 30  # written calls are forgotten after this

    def __post_init__(self) -> None:
        for key in ("reserved_numbers", "keep_days"):
            if getattr(self, key) < 0:
                raise SettingError(key, f"must not be negative, got {getattr(self, key)}")
        if self.replay_interval_seconds <= 0:
            raise SettingError("replay_interval_seconds", f"must be positive, got {self.replay_interval_seconds}")


QUIET_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class CallbackSettings:
    """The [callbacks] section: satisfaction callbacks (回访) of approved replies, placed by every node that
    answers with the hotline flow (several nodes share the queue in the database)."""

    enabled: bool = True
    attempts: int = 3  # calls per reply before the ticket is marked unreachable for an operator
    retry_hours: float = 2.0  # from the end of one attempt to the next
    quiet_hours: str = "21:00-08:00"  # Asia/Shanghai; no callback rings in them
    call_on_holidays: bool = False  # statutory holidays (and the administrator's) are quiet days too
    max_concurrent_calls: int = 2  # simultaneous callback calls per node
    ring_seconds: float = 30.0  # no answer after this: the attempt is 'no_answer'
    poll_seconds: float = 15.0  # how often the node looks for due attempts
    lease_minutes: float = 15.0  # an attempt a node holds longer (it died mid-call) counts as interrupted
    flow: str = "callback"  # the flow file read to the citizen

    def __post_init__(self) -> None:
        if not QUIET_HOURS_RE.match(self.quiet_hours):
            raise SettingError("quiet_hours", f"expects HH:MM-HH:MM, e.g. 21:00-08:00; got {self.quiet_hours!r}")
        for key in ("attempts", "max_concurrent_calls"):
            if getattr(self, key) < 1:
                raise SettingError(key, f"must be at least 1, got {getattr(self, key)}")
        for key in ("retry_hours", "ring_seconds", "poll_seconds", "lease_minutes"):
            if getattr(self, key) <= 0:
                raise SettingError(key, f"must be positive, got {getattr(self, key)}")
        if self.lease_minutes * 60 <= self.ring_seconds:
            raise SettingError("lease_minutes", "must be longer than ring_seconds plus a call")

    def policy(self) -> CallbackPolicy:
        start, end = (time.fromisoformat(part) for part in self.quiet_hours.split("-"))
        return CallbackPolicy(attempts=self.attempts, retry_interval=timedelta(hours=self.retry_hours),
                              quiet_start=start, quiet_end=end, call_on_holidays=self.call_on_holidays,
                              lease=timedelta(minutes=self.lease_minutes))


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node is configured with, and the file it came from."""

    path: Path
    sip: IvrSettings
    server: ServerSettings
    callflows: CallflowSettings
    tickets: TicketSettings
    retention: RetentionPolicy  # [retention]: how long call audio is kept per request type
    journal: JournalSettings
    callbacks: CallbackSettings


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, as the server and the composition's tools take it."""
    parser.add_argument("--config", type=Path, default=None,
                        help="INI file (default: $HOTLINE_SIP_CONF, else sip.conf, else sip.conf.example)")


def load_config_or_report(path: Path | None, *,
                          check: Callable[[NodeConfig], None] | None = None) -> NodeConfig | None:
    """The configuration at `path` (else this checkout's, inifile.config_path), passed through `check` (e.g.
    app.exposure.check_exposure before a node starts), or None after printing what is wrong to stderr (the
    caller exits with status 2)."""
    try:
        config = load_config(path or config_path())
        if check is not None:
            check(config)
        return config
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return None


def load_config(path: str | Path) -> NodeConfig:
    """Read and check the whole file; inifile.ConfigError names the file, the section and the key."""
    config = IniFile(path)
    node = NodeConfig(path=config.path, sip=ivr_settings(config), server=config.typed("server", ServerSettings),
                      callflows=config.typed("callflows", CallflowSettings), tickets=ticket_settings(config),
                      retention=config.parse("retention", retention_policy),
                      journal=config.typed("journal", JournalSettings),
                      callbacks=config.typed("callbacks", CallbackSettings))
    callback_flow = ROOT / node.callflows.flows_dir / f"{node.callbacks.flow}.yaml"
    if node.callbacks.enabled and node.callflows.flow != DEMO_FLOW and not callback_flow.is_file():
        raise ConfigError(f"{node.path}: [callbacks] flow {node.callbacks.flow!r}: no flow file {callback_flow} "
                          f"(name a .yaml file in [callflows] flows_dir, or set enabled = no)")
    return node
