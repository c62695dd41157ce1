"""Fixtures for the Durable engine tests: the sample app, loaded fresh per test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from uuid import uuid4

import pytest

SAMPLE_DIR = Path(__file__).parent / "apps" / "durable_sample"


def load_sample() -> ModuleType:
    """The sample app module (cached under a private name so tests share CALLS/FAILURES)."""
    name = "durable_sample_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SAMPLE_DIR / "function_app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def sample() -> ModuleType:
    module = load_sample()
    module.CALLS.clear()
    module.FAILURES.clear()
    return module


@pytest.fixture
def durable_hub(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh task hub in the session's PostgreSQL for devhost's Durable store (DEVHOST_DURABLE_DSN)."""
    hub = f"hub{uuid4().hex[:10]}"
    monkeypatch.setenv("DEVHOST_DURABLE_DSN", database_url)
    monkeypatch.setenv("DURABLE_TEST_HUB", hub)
    return hub
