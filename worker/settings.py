"""Settings from the environment, read once at the edge (the Celery app, the Flask factory,
the CLI) and handed down; validated with errors that name the variable.

This module imports nothing heavy: the webhook imports it (and the pure domain vocabulary).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

from worker.domain.lifecycle import MAX_ATTEMPTS, MAX_RETRY_DELAY_S
from worker.domain.names import (
    AMD_CALLBACK_PATH,
    RECORDING_CALLBACK_PATH,
    REQUIRED_STATUS_CALLBACK_EVENT,
    STATUS_CALLBACK_EVENTS,
    STATUS_CALLBACK_PATH,
    TWILIO_STATUS_CALLBACK_EVENTS,
)
from worker.domain.notifications import RETRY_DELAYS_S, SIGNING_SECRET_PREFIX
from worker.domain.statuses import RETRYABLE_CALL_STATUSES

# A hundred years: past it, the cut-off date is out of datetime's range.
MAX_RETENTION_DAYS = 36500
# The pace's safety margin, a fraction of 1/cps added to every interval: measured
# (docs/BENCHMARKS.md, section 1); above 5 % it costs more allowance than jitter needs.
DEFAULT_PACE_MARGIN = 0.005
MAX_PACE_MARGIN = 0.05


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    try:
        parts = urlsplit(value)
        hostname, _ = parts.hostname, parts.port  # both raise on a malformed host or port
    except ValueError as exc:
        raise SettingsError(f"{name} is not a valid URL ({exc}): {value!r}") from None
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise SettingsError(f"{name} must be a {' or '.join(schemes)} URL, got {value!r}")
    if parts.scheme in ("http", "https") and not hostname:
        raise SettingsError(f"{name} must be a URL with a host, got {value!r}")
    return value.rstrip("/") if parts.scheme in ("http", "https") else value


def _public_url(env: Mapping[str, str]) -> str:
    """Twilio refuses a StatusCallback whose host has an underscore: say so at start-up."""
    value = _url(env, "DIALER_PUBLIC_URL", "http://localhost:5000", ("http", "https"))
    if "_" in (urlsplit(value).hostname or ""):
        raise SettingsError(f"DIALER_PUBLIC_URL: Twilio refuses a host with an underscore: "
                            f"{value!r}")
    return value


def _log_format(env: Mapping[str, str]) -> str:
    value = env.get("DIALER_LOG_FORMAT", "").strip().lower() or "text"
    if value not in ("text", "json"):
        raise SettingsError(f"DIALER_LOG_FORMAT must be text or json, got {value!r}")
    return value


def _port(env: Mapping[str, str], name: str) -> int:
    """0 (the default) turns the listener off."""
    port = int(_number(env, name, 0, minimum=0, integer=True))
    if port > 65535:
        raise SettingsError(f"{name} must be a TCP port (at most 65535), got {port}")
    return port


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float,
            integer: bool = False, maximum: float = float("inf")) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if value != value or value < minimum or value == float("inf"):
        raise SettingsError(f"{name} must be at least {minimum}, got {raw!r}")
    if value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def parse_delays(raw: str, name: str) -> tuple[int, ...]:
    """'300,900,3600' -> (300, 900, 3600); shared by the settings and the CLI."""
    try:
        delays = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(f"{name} must be comma-separated whole seconds, got {raw!r}") from None
    if not 1 <= len(delays) <= MAX_ATTEMPTS or any(
            not 0 <= d <= MAX_RETRY_DELAY_S for d in delays):
        raise SettingsError(f"{name} must be 1 to {MAX_ATTEMPTS} comma-separated seconds from "
                            f"0 to {MAX_RETRY_DELAY_S} (30 days), got {raw!r}")
    return delays


def parse_statuses(raw: str, name: str) -> tuple[str, ...]:
    statuses = tuple(s.strip() for s in raw.split(",") if s.strip())
    unknown = [s for s in statuses if s not in RETRYABLE_CALL_STATUSES]
    if unknown:
        raise SettingsError(
            f"{name} may list only {', '.join(RETRYABLE_CALL_STATUSES)}; got {', '.join(unknown)}"
        )
    return statuses


def parse_status_callback_events(env: Mapping[str, str]) -> tuple[str, ...]:
    """DIALER_STATUS_CALLBACK_EVENTS: Twilio's event names, space- or comma-separated, in
    Twilio's order without repeats; `completed` is required (its callback ends an attempt)."""
    name = "DIALER_STATUS_CALLBACK_EVENTS"
    raw = env.get(name, "").strip()
    if not raw:
        return STATUS_CALLBACK_EVENTS
    given = [e for e in re.split(r"[\s,]+", raw) if e]
    unknown = [e for e in given if e not in TWILIO_STATUS_CALLBACK_EVENTS]
    if unknown:
        raise SettingsError(f"{name} may list only {', '.join(TWILIO_STATUS_CALLBACK_EVENTS)}, "
                            f"separated by spaces or commas; got {raw!r}")
    if REQUIRED_STATUS_CALLBACK_EVENT not in given:
        raise SettingsError(f"{name} must include {REQUIRED_STATUS_CALLBACK_EVENT}: its "
                            f"callback is the one that ends an attempt; got {raw!r}")
    return tuple(e for e in TWILIO_STATUS_CALLBACK_EVENTS if e in given)


@dataclass(frozen=True)
class Settings:
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_api_base_url: str
    public_url: str
    database_url: str
    redis_url: str
    calls_per_second: float
    default_from: str | None
    max_attempts: int
    retry_delays: tuple[int, ...]
    retry_on: tuple[str, ...]
    trusted_proxies: int
    twilio_timeout: float
    max_pacing_wait: float
    queued_stale_after: float
    dispatch_interval: float
    visibility_timeout: int
    webhook_max_body: int
    api_max_body: int
    reconcile_interval: float
    reconcile_silence: float
    unknown_grace: float
    metrics_port: int
    max_calls_per_number: int
    frequency_window_hours: float
    log_json: bool
    pace_margin: float = DEFAULT_PACE_MARGIN
    # Result notifications: the signing key's bytes (None: none are sent), the URL for
    # jobs that name none, the POST's timeout and how often the relay looks for due ones.
    notify_secret: bytes | None = None
    notify_url: str | None = None
    notify_timeout: float = 10.0
    notify_relay_interval: float = 5.0
    notify_retry_delays: tuple[int, ...] = RETRY_DELAYS_S
    # Days a final job keeps its personal data (0: for ever), and how often beat looks.
    retention_days: int = 0
    retention_interval: float = 3600.0
    # The status events every create asks Twilio for (each one is a callback to handle).
    status_callback_events: tuple[str, ...] = STATUS_CALLBACK_EVENTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", "").strip() or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", "").strip() or None,
            twilio_api_base_url=_url(env, "TWILIO_API_BASE_URL", "https://api.twilio.com",
                                     ("http", "https")),
            public_url=_public_url(env),
            database_url=_database_url(env),
            redis_url=_url(env, "DIALER_REDIS_URL", "redis://localhost:6379/0",
                           ("redis", "rediss", "unix")),
            calls_per_second=_positive(env, "DIALER_CALLS_PER_SECOND", 1.0),
            default_from=env.get("DIALER_DEFAULT_FROM", "").strip() or None,
            max_attempts=int(_number(env, "DIALER_MAX_ATTEMPTS", 3, minimum=1, integer=True,
                                     maximum=MAX_ATTEMPTS)),
            retry_delays=parse_delays(env.get("DIALER_RETRY_DELAYS", "").strip() or "300,900,3600",
                                      "DIALER_RETRY_DELAYS"),
            retry_on=parse_statuses(env.get("DIALER_RETRY_ON", "").strip()
                                    or ",".join(RETRYABLE_CALL_STATUSES), "DIALER_RETRY_ON"),
            trusted_proxies=int(_number(env, "DIALER_TRUSTED_PROXIES", 0, minimum=0,
                                        integer=True)),
            twilio_timeout=_positive(env, "DIALER_TWILIO_TIMEOUT", 15.0),
            max_pacing_wait=_positive(env, "DIALER_MAX_PACING_WAIT", 10.0),
            pace_margin=_number(env, "DIALER_PACE_MARGIN", DEFAULT_PACE_MARGIN, minimum=0,
                                maximum=MAX_PACE_MARGIN),
            queued_stale_after=_positive(env, "DIALER_QUEUED_STALE_SECONDS", 120.0),
            dispatch_interval=_positive(env, "DIALER_DISPATCH_INTERVAL", 1.0),
            visibility_timeout=int(_number(env, "DIALER_VISIBILITY_TIMEOUT", 3600, minimum=1,
                                           integer=True)),
            webhook_max_body=int(_number(env, "DIALER_WEBHOOK_MAX_BODY", 65536, minimum=1024,
                                         integer=True)),
            api_max_body=int(_number(env, "DIALER_API_MAX_BODY", 5 * 1024 * 1024, minimum=1024,
                                     integer=True)),
            reconcile_interval=_positive(env, "DIALER_RECONCILE_INTERVAL", 60.0),
            reconcile_silence=_positive(env, "DIALER_RECONCILE_SILENCE", 180.0),
            unknown_grace=_positive(env, "DIALER_UNKNOWN_GRACE", 300.0),
            metrics_port=_port(env, "DIALER_METRICS_PORT"),
            max_calls_per_number=int(_number(env, "DIALER_MAX_CALLS_PER_NUMBER", 0, minimum=0,
                                             integer=True)),
            frequency_window_hours=_positive(env, "DIALER_FREQUENCY_WINDOW_HOURS", 24.0),
            log_json=_log_format(env) == "json",
            notify_secret=_notify_secret(env),
            notify_url=_notify_url(env),
            notify_timeout=_positive(env, "DIALER_NOTIFY_TIMEOUT", 10.0),
            notify_relay_interval=_positive(env, "DIALER_NOTIFY_RELAY_INTERVAL", 5.0),
            notify_retry_delays=parse_delays(
                env.get("DIALER_NOTIFY_RETRY_DELAYS", "").strip()
                or ",".join(map(str, RETRY_DELAYS_S)), "DIALER_NOTIFY_RETRY_DELAYS"),
            retention_days=int(_number(env, "DIALER_RETENTION_DAYS", 0, minimum=0, integer=True,
                                       maximum=MAX_RETENTION_DAYS)),
            retention_interval=_positive(env, "DIALER_RETENTION_INTERVAL", 3600.0),
            status_callback_events=parse_status_callback_events(env),
        )

    def require_twilio(self) -> tuple[str, str]:
        """The account credentials, or an error naming the missing variable (needed to dial)."""
        for name, value in (("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                            ("TWILIO_AUTH_TOKEN", self.twilio_auth_token)):
            if not value:
                raise SettingsError(f"{name} is not set: it is needed to place calls")
        assert self.twilio_account_sid and self.twilio_auth_token
        return self.twilio_account_sid, self.twilio_auth_token

    @property
    def status_callback_url(self) -> str:
        return self.public_url + STATUS_CALLBACK_PATH

    @property
    def recording_callback_url(self) -> str:
        return self.public_url + RECORDING_CALLBACK_PATH

    @property
    def amd_callback_url(self) -> str:
        return self.public_url + AMD_CALLBACK_PATH


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default, minimum=0)
    if value <= 0:
        raise SettingsError(f"{name} must be greater than 0, got {env.get(name)!r}")
    return value




def _notify_secret(env: Mapping[str, str]) -> bytes | None:
    """`whsec_` + base64 of the key, as Standard Webhooks writes a signing secret."""
    raw = env.get("DIALER_NOTIFY_SECRET", "").strip()
    if not raw:
        return None
    # The value is a secret: the errors never repeat it.
    if not raw.startswith(SIGNING_SECRET_PREFIX):
        raise SettingsError(f"DIALER_NOTIFY_SECRET must start with {SIGNING_SECRET_PREFIX}")
    try:
        key = base64.b64decode(raw.removeprefix(SIGNING_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("DIALER_NOTIFY_SECRET must be whsec_ followed by base64") from None
    if len(key) < 24:
        raise SettingsError("DIALER_NOTIFY_SECRET must hold at least 24 bytes of key")
    return key


def _notify_url(env: Mapping[str, str]) -> str | None:
    if not env.get("DIALER_NOTIFY_URL", "").strip():
        return None
    if not env.get("DIALER_NOTIFY_SECRET", "").strip():
        raise SettingsError("DIALER_NOTIFY_URL needs DIALER_NOTIFY_SECRET to sign the events")
    _url(env, "DIALER_NOTIFY_URL", "", ("http", "https"))
    return env["DIALER_NOTIFY_URL"].strip()  # as given: a receiver's path may end in /


def _database_url(env: Mapping[str, str]) -> str:
    # Shape only: SQLAlchemy itself must not be imported here (the webhook reads these settings).
    value = env.get("DIALER_DATABASE_URL", "").strip() or "sqlite:///dialer.db"
    if not re.fullmatch(r"[a-z][a-z0-9]*(\+[a-z0-9_]+)?://.*", value):
        raise SettingsError(f"DIALER_DATABASE_URL is not a SQLAlchemy URL: {value!r}")
    return value


@functools.cache
def get_settings() -> Settings:
    """Read once per process; a `.env` file in the working directory fills what is unset."""
    # An explicit path: with none, python-dotenv searches from this module's directory.
    load_dotenv(Path.cwd() / ".env", override=False)
    return Settings.from_env(os.environ)
