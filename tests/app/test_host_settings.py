"""host.json settings the code relies on but the devhost cannot prove, because it does not read them.

The payment flow's instance id is the booking id and checkout.start_checkout relies on the host
refusing to start a second instance while one is running (never silently replacing it). The
Durable extension does that only with overridableExistingInstanceStates = NonRunningStates, so it
is pinned here. The devhost does not read the setting: its engine always refuses a non-terminal
instance id (tests/devhost/durable/test_client_contract.py), which is the pinned behaviour."""

from __future__ import annotations

import json
from pathlib import Path

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


def test_durable_never_replaces_a_running_instance() -> None:
    durable = json.loads(HOST_JSON.read_text())["extensions"]["durableTask"]
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
