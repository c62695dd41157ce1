"""host.json and local.settings.json, read the way the Functions host and Core Tools read them.

`local.settings.json` `Values` go into `os.environ` as `func start` does: a variable that is
already set in the environment wins, and the local setting is skipped (Core Tools logs "Skipping
'X' from local settings as it's already defined in current environment variables"). This lets CI
and tests override any local value with a plain environment variable.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("devhost.config")

DEFAULT_ROUTE_PREFIX = "api"
# Flex Consumption (our target plan) defaults functionTimeout to 30 minutes.
DEFAULT_FUNCTION_TIMEOUT = timedelta(minutes=30)
# Core Tools' hub name when host.json sets none and WEBSITE_SITE_NAME is unset.
DEFAULT_HUB_NAME = "TestHubName"

_SETTING_REF = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?")


class ConfigError(ValueError):
    """host.json or local.settings.json cannot be used."""


def resolve_settings(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every `%Name%` with the app setting `Name`; an unknown setting raises ConfigError."""
    env = os.environ if environ is None else environ

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"app setting {name!r} referenced as %{name}% is not defined")
        return env[name]

    return _SETTING_REF.sub(lookup, text)


def parse_timespan(text: str) -> timedelta | None:
    """A .NET TimeSpan such as `00:10:00` or `1.02:00:00`; `-1` means unbounded (None)."""
    text = text.strip()
    if text == "-1":
        return None
    match = _TIMESPAN.fullmatch(text)
    if not match:
        raise ConfigError(f"invalid TimeSpan {text!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(7, "0")) // 10,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a JSON object")
    return data


def _setting_text(value: Any) -> str:
    # Json.NET turns scalar tokens into strings like this when it reads Dictionary<string, string>.
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class LocalSettings:
    values: Mapping[str, str] = field(default_factory=dict)
    local_http_port: int | None = None


def read_local_settings(app_dir: Path) -> LocalSettings:
    """Read local.settings.json if present (it is git-ignored, so often absent)."""
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return LocalSettings()
    data = _read_json(path)
    if data.get("IsEncrypted"):
        raise ConfigError(f"{path} is encrypted; run 'func settings decrypt' or rewrite it in plain text")
    raw_values = data.get("Values") or {}
    values = {str(k): _setting_text(v) for k, v in raw_values.items() if v is not None}
    port = (data.get("Host") or {}).get("LocalHttpPort")
    return LocalSettings(values, int(port) if port is not None else None)


def apply_local_settings(settings: LocalSettings, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Put `Values` into the environment unless already set; return the names that were skipped."""
    env = os.environ if environ is None else environ
    skipped = []
    for name, value in settings.values.items():
        if name in env:
            skipped.append(name)
            log.info("Skipping '%s' from local settings as it's already defined in the environment", name)
        else:
            env[name] = value
    return skipped


WORKER_PROCESS_COUNT = "FUNCTIONS_WORKER_PROCESS_COUNT"
MAX_WORKER_PROCESSES = 10  # Azure's limit


def process_count(environ: Mapping[str, str] | None = None, local_values: Mapping[str, str] | None = None) -> int:
    """`FUNCTIONS_WORKER_PROCESS_COUNT` from the environment, else local.settings.json; 1 by default, as in Azure."""
    env = os.environ if environ is None else environ
    text = env.get(WORKER_PROCESS_COUNT) or (local_values or {}).get(WORKER_PROCESS_COUNT) or "1"
    try:
        count = int(text.strip())
    except ValueError:
        raise ConfigError(f"{WORKER_PROCESS_COUNT} must be a whole number, not {text!r}") from None
    if not 1 <= count <= MAX_WORKER_PROCESSES:
        raise ConfigError(f"{WORKER_PROCESS_COUNT} must be between 1 and {MAX_WORKER_PROCESSES}, not {count}")
    return count


@dataclass(frozen=True)
class SingletonSettings:
    """host.json `singleton`: the listener lock's lease period and how often a process without it retries."""

    listener_lock_period: timedelta = timedelta(seconds=60)
    listener_lock_recovery_polling_interval: timedelta = timedelta(seconds=60)

    @classmethod
    def from_host_json(cls, section: Mapping[str, Any]) -> SingletonSettings:
        """Read the section; absent (or unbounded, `-1`) values keep the host's defaults."""
        defaults = cls()

        def span(key: str, default: timedelta) -> timedelta:
            value = section.get(key)
            return default if value is None else (parse_timespan(str(value)) or default)

        return cls(
            span("listenerLockPeriod", defaults.listener_lock_period),
            span("listenerLockRecoveryPollingInterval", defaults.listener_lock_recovery_polling_interval),
        )


@dataclass(frozen=True)
class HostConfig:
    app_dir: Path
    route_prefix: str = DEFAULT_ROUTE_PREFIX
    function_timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT
    hub_name: str = DEFAULT_HUB_NAME
    local_http_port: int | None = None
    host_json: Mapping[str, Any] = field(default_factory=dict)
    singleton: SingletonSettings = field(default_factory=SingletonSettings)


def load_host_config(
    app_dir: Path, *, apply_settings: bool = True, environ: MutableMapping[str, str] | None = None
) -> HostConfig:
    """Read local.settings.json (into the environment first), then host.json with %Setting% resolved."""
    env = os.environ if environ is None else environ
    settings = read_local_settings(app_dir)
    if apply_settings:
        apply_local_settings(settings, env)
    host_path = app_dir / "host.json"
    host_json = _read_json(host_path) if host_path.is_file() else {}
    extensions = host_json.get("extensions") or {}

    prefix = (extensions.get("http") or {}).get("routePrefix", DEFAULT_ROUTE_PREFIX)
    if not isinstance(prefix, str):
        raise ConfigError("host.json extensions.http.routePrefix must be a string")

    timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT
    if host_json.get("functionTimeout") is not None:
        timeout = parse_timespan(str(host_json["functionTimeout"]))

    hub = (extensions.get("durableTask") or {}).get("hubName")
    if hub is None:
        hub = env.get("WEBSITE_SITE_NAME") or DEFAULT_HUB_NAME
    return HostConfig(
        app_dir=app_dir,
        route_prefix=resolve_settings(prefix, env).strip("/"),
        function_timeout=timeout,
        hub_name=resolve_settings(str(hub), env),
        local_http_port=settings.local_http_port,
        host_json=host_json,
        singleton=SingletonSettings.from_host_json(host_json.get("singleton") or {}),
    )
