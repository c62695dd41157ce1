"""host.json and local.settings.json as the host and Core Tools read them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.hostconfig import ConfigError, load_host_config, parse_timespan, resolve_settings


def write(directory: Path, name: str, content: object) -> None:
    (directory / name).write_text(json.dumps(content))


def test_defaults_without_files(tmp_path: Path) -> None:
    config = load_host_config(tmp_path, environ={})
    assert (config.route_prefix, config.function_timeout, config.hub_name) == (
        "api",
        timedelta(minutes=30),
        "TestHubName",
    )
    assert config.local_http_port is None


def test_local_settings_fill_the_environment_but_existing_variables_win(tmp_path: Path) -> None:
    write(
        tmp_path,
        "local.settings.json",
        {
            "IsEncrypted": False,
            "Values": {"HUB": "FromFile", "ALREADY": "file", "NUMBER": 5, "FLAG": True},
            "Host": {"LocalHttpPort": 7072},
        },
    )
    write(
        tmp_path,
        "host.json",
        {
            "version": "2.0",
            "functionTimeout": "00:10:00",
            "extensions": {"http": {"routePrefix": "/v1/"}, "durableTask": {"hubName": "%HUB%x"}},
        },
    )
    env = {"ALREADY": "env"}
    config = load_host_config(tmp_path, environ=env)
    assert env == {"ALREADY": "env", "HUB": "FromFile", "NUMBER": "5", "FLAG": "True"}
    assert config.hub_name == "FromFilex"
    assert config.route_prefix == "v1"
    assert config.function_timeout == timedelta(minutes=10)
    assert config.local_http_port == 7072


def test_unresolved_setting_and_encrypted_settings_fail(tmp_path: Path) -> None:
    write(tmp_path, "host.json", {"extensions": {"durableTask": {"hubName": "%MISSING%"}}})
    with pytest.raises(ConfigError, match="MISSING"):
        load_host_config(tmp_path, environ={})
    write(tmp_path, "local.settings.json", {"IsEncrypted": True, "Values": {}})
    with pytest.raises(ConfigError, match="encrypted"):
        load_host_config(tmp_path, environ={})


def test_resolve_settings_and_timespans() -> None:
    assert resolve_settings("%A%-%B%", {"A": "1", "B": "2"}) == "1-2"
    assert parse_timespan("1.02:03:04.5") == timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=500)
    assert parse_timespan("-1") is None
    with pytest.raises(ConfigError):
        parse_timespan("10 minutes")
