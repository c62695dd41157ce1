"""host.json settings the code relies on, pinned so that nobody changes them unawares.

The payment flow's instance id is the booking id and checkout.start_checkout relies on the host
refusing to start a second instance while one is running (never silently replacing it). The
Durable extension does that only with overridableExistingInstanceStates = NonRunningStates, so it
is pinned here. The devhost reads the setting as the host does
(tests/devhost/durable/test_overridable_states.py), so the app's tests run under it too."""

from __future__ import annotations

import json
from pathlib import Path

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


def test_durable_never_replaces_a_running_instance() -> None:
    durable = json.loads(HOST_JSON.read_text())["extensions"]["durableTask"]
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
