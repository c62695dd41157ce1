"""Emulated scale-out: two `python -m devhost` OS processes share one PostgreSQL task hub.

Real time (the processes cannot share a virtual clock), so the orchestrations use no timers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from durable_http_helpers import CLIENT_APP

from devhost.durable.harness import DurableHttpHarness

ROOT = Path(__file__).resolve().parents[3]
COUNT, FAN = 20, 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def devhost_process(env: dict[str, str], log: Path) -> Iterator[DurableHttpHarness]:
    """`python -m devhost` on a free port; stopped with SIGTERM (killed after 15 s) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "devhost", "--app", str(CLIENT_APP), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        # The line `func start` users wait for: printed once the services (the Durable store) are up.
        while "Host started at" not in log.read_text():
            assert process.poll() is None, f"devhost exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"devhost did not start: {log.read_text()}"
            time.sleep(0.1)
        yield DurableHttpHarness(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_two_devhost_processes_share_one_hub_without_running_an_episode_twice(durable_hub: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # DEVHOST_DURABLE_DSN and DURABLE_TEST_HUB from durable_hub
    with ExitStack() as stack:
        first, second = (stack.enter_context(devhost_process(env, tmp_path / f"devhost{i}.log")) for i in (1, 2))
        ids = [first.start_via("api/start/fan_out", FAN) for _ in range(COUNT)]
        finals = [second.wait(instance_id, seconds=60) for instance_id in ids]

        assert {f["runtimeStatus"] for f in finals} == {"Completed"}
        assert {f["output"]["sum"] for f in finals} == {sum(i * i for i in range(FAN))}
        pids = {pid for f in finals for pid in f["output"]["pids"]}
        assert len(pids) == 2, "both processes ran activities"
        for instance_id in ids:
            history = second.history(instance_id)
            kinds = [e["EventType"] for e in history]
            # An episode run twice at once would have committed its events twice.
            assert (kinds.count("ExecutionStarted"), kinds.count("ExecutionCompleted")) == (1, 1)
            scheduled = [e["EventId"] for e in history if e["EventType"] == "TaskScheduled"]
            completed = [e["TaskScheduledId"] for e in history if e["EventType"] == "TaskCompleted"]
            assert scheduled == list(range(FAN))
            assert sorted(completed) == list(range(FAN))
