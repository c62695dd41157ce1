"""`python -m devhost --processes 2`: two host processes on one port, like FUNCTIONS_WORKER_PROCESS_COUNT=2.

Real processes on the system clock (they cannot share a virtual clock); the timer fires every second.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from devhost.supervisor import MIN_UPTIME_S

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "apps" / "workers_app"
STARTED = re.compile(r"Host started at (\S+) with 2 host processes \(pids (\d+), (\d+)\)")


@dataclass
class Supervised:
    process: subprocess.Popen[bytes]
    url: str
    pids: tuple[int, int]
    log: Path
    ticks: Path


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@contextmanager
def two_processes(tmp_path: Path, storage_connection_string: str) -> Iterator[Supervised]:
    """The supervisor and its two children; stopped with SIGINT (killed after 30 s) on exit."""
    log, ticks = tmp_path / "devhost.log", tmp_path / "ticks.log"
    ticks.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AzureWebJobsStorage": storage_connection_string,
        "AzureFunctionsWebHost__hostid": f"h-{uuid4().hex[:8]}",  # a lease left by another test is not ours
        "WORKERS_TICK_LOG": str(ticks),
    }
    command = [sys.executable, "-m", "devhost", "--app", str(APP), "--port", "0", "--processes", "2"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (started := STARTED.search(log.read_text())) is None:
            assert process.poll() is None, f"devhost exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"devhost did not start: {log.read_text()}"
            time.sleep(0.1)
        yield Supervised(process, started[1], (int(started[2]), int(started[3])), log, ticks)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def listening_pids(log: Path) -> set[int]:
    """The children the supervisor saw ready, from its log."""
    return {int(pid) for pid in re.findall(r"host process \d+ \(pid (\d+)\) is listening", log.read_text())}


def served_by(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/pid", timeout=10) as response:  # noqa: S310 (loopback)
        return int(response.read())


def test_requests_are_served_by_both_processes(tmp_path: Path, storage_connection_string: str) -> None:
    with two_processes(tmp_path, storage_connection_string) as host:
        # Each urlopen is a new connection; the kernel spreads connections across the two listeners.
        pids = {served_by(host.url) for _ in range(60)}
        assert pids == set(host.pids)


def test_a_timer_fires_once_per_occurrence_across_processes(tmp_path: Path, storage_connection_string: str) -> None:
    with two_processes(tmp_path, storage_connection_string) as host:
        deadline = time.monotonic() + 60
        while len(lines := host.ticks.read_text().splitlines()) < 5:
            assert time.monotonic() < deadline, f"the timer did not fire 5 times: {host.log.read_text()}"
            time.sleep(0.2)
    runs = [line.split() for line in lines]
    assert {pid for pid, _ in runs} <= {str(pid) for pid in host.pids}
    assert len({pid for pid, _ in runs}) == 1, "only the process holding the singleton lock fires"
    seconds = [second for _, second in runs]
    assert len(seconds) == len(set(seconds)), "an occurrence fired twice"


def test_stop_leaves_no_process_behind(tmp_path: Path, storage_connection_string: str) -> None:
    with two_processes(tmp_path, storage_connection_string) as host:
        assert all(alive(pid) for pid in host.pids)
        host.process.send_signal(signal.SIGINT)  # the supervisor only, not its process group
        assert host.process.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in host.pids)


def test_a_crashed_process_is_reported_and_replaced(tmp_path: Path, storage_connection_string: str) -> None:
    with two_processes(tmp_path, storage_connection_string) as host:
        crashed, other = host.pids
        time.sleep(MIN_UPTIME_S + 0.5)  # up long enough not to count as a crash loop
        os.kill(crashed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (replacements := listening_pids(host.log) - set(host.pids)):
            assert time.monotonic() < deadline, f"no replacement: {host.log.read_text()}"
            time.sleep(0.1)
        assert {served_by(host.url) for _ in range(60)} == {*replacements, other}
    assert f"(pid {crashed}) exited with code -9" in host.log.read_text()


def test_a_crash_right_after_start_is_reported_and_stops_everything(
    tmp_path: Path, storage_connection_string: str
) -> None:
    with two_processes(tmp_path, storage_connection_string) as host:
        crashed, other = host.pids
        os.kill(crashed, signal.SIGKILL)
        # Right after start a crash counts as a crash loop: reported, and everything stops (exit 1).
        assert host.process.wait(timeout=30) == 1
    assert f"(pid {crashed}) exited with code -9" in host.log.read_text()
    assert not alive(crashed) and not alive(other)
