"""Several host processes on one port: `FUNCTIONS_WORKER_PROCESS_COUNT` (and scale-out), locally.

In Azure a host instance starts FUNCTIONS_WORKER_PROCESS_COUNT Python worker processes (1 by default,
at most 10) and spreads invocations across them, and a plan adds instances under load. Each worker
imports function_app.py itself, so the app's module-level pools and clients exist once per process.

devhost emulates both with N complete host processes (`python -m devhost` children) that listen on
the same port with SO_REUSEPORT: the kernel spreads new connections across them, and each process
loads the app and keeps its own loop, thread pool, pools and clients, like a worker. The listeners
that must not run twice are coordinated across processes by the host's own mechanisms: the timer
singleton lease and the blob receipt leases in AzureWebJobsStorage, and row locks in the Durable
store (PostgreSQL).

The supervisor:
- reserves the port first (bound with SO_REUSEPORT, never listening; port 0 becomes a free port);
- starts the children, each with a pipe on which it reports that it listens, and prints
  `Host started at …` once every child does;
- reports a child that exits by itself and starts another in its place, unless it never got ready
  or died within `MIN_UPTIME_S` of its start (a crash loop): then it stops everything and exits 1;
- on SIGINT/SIGTERM sends SIGTERM to every child, waits `stop_timeout` seconds, kills what is left.
  Children also get SIGTERM if the supervisor itself dies (Linux parent-death signal).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

log = logging.getLogger("devhost.supervisor")

MIN_UPTIME_S = 5.0
READY = b"ready\n"


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    ready_fd: int | None  # read end of the readiness pipe, until the child reports or dies
    started_at: float
    ready: bool = False


class Supervisor:
    """Runs `count` copies of `python -m devhost CHILD_ARGS --port PORT --process-index I --ready-fd FD`."""

    def __init__(
        self,
        child_args: Sequence[str],
        *,
        count: int,
        host: str,
        port: int,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 120.0,
        stop_timeout: float = 20.0,
        out: TextIO | None = None,
    ) -> None:
        self.child_args = list(child_args)
        self.count = count
        self.host = host
        self.port = port
        self.env = dict(os.environ if env is None else env)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.out = out or sys.stdout
        self.children: dict[int, _Child] = {}
        self._stop = threading.Event()
        self._reservation: socket.socket | None = None

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (0) or a crash loop (1); every child is stopped on return."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._reserve_port()
            for index in range(self.count):
                self._spawn(index)
            if not self._wait_until_ready():
                return 0 if self._stop.is_set() else 1
            pids = ", ".join(str(c.process.pid) for c in self.children.values())
            self.out.write(
                f"Host started at {self.url} with {self.count} host processes (pids {pids}). Ctrl-C to stop.\n"
            )
            self.out.flush()
            while not self._stop.wait(0.2):
                self._collect_ready(timeout=0)
                if not self._replace_exited():
                    return 1
            return 0
        finally:
            self.stop_children()
            if self._reservation is not None:
                self._reservation.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def _reserve_port(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        self._reservation = sock
        # SO_REUSEPORT would also let us join another server's port (say, a devhost left running).
        try:
            probe = socket.create_connection((self.host, self.port), timeout=1)
        except OSError:
            return  # nobody listens there: the port is ours
        probe.close()
        raise OSError(f"{self.host}:{self.port} is already served by another process")

    def _spawn(self, index: int) -> None:
        read_fd, write_fd = os.pipe()
        command = [
            sys.executable,
            "-m",
            "devhost",
            *self.child_args,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--process-index",
            str(index),
            "--ready-fd",
            str(write_fd),
        ]
        env = {**self.env, "FUNCTIONS_WORKER_PROCESS_COUNT": str(self.count)}
        try:
            process = subprocess.Popen(command, env=env, pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        self.children[index] = _Child(index, process, read_fd, time.monotonic())
        log.info("started host process %d (pid %d)", index, process.pid)

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while not all(child.ready for child in self.children.values()):
            if self._stop.is_set():
                return False
            if time.monotonic() > deadline:
                log.error("host processes did not start within %g s", self.ready_timeout)
                return False
            self._collect_ready(timeout=0.2)
            for child in self.children.values():
                if child.process.poll() is not None:
                    log.error(
                        "host process %d (pid %d) exited with code %s before it was ready",
                        child.index,
                        child.process.pid,
                        child.process.returncode,
                    )
                    return False
        return True

    def _collect_ready(self, *, timeout: float) -> None:
        waiting = {child.ready_fd: child for child in self.children.values() if child.ready_fd is not None}
        if not waiting:
            time.sleep(timeout)
            return
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(list(waiting), [], [], timeout)
            for fd in readable:
                child = waiting[fd]
                data = os.read(fd, 64)
                if data.startswith(READY.strip()):
                    child.ready = True
                    log.info("host process %d (pid %d) is listening", child.index, child.process.pid)
                os.close(fd)  # ready, or EOF: the child died (seen by poll())
                child.ready_fd = None

    def _replace_exited(self) -> bool:
        """Report children that exited and start new ones; False on a crash loop."""
        for index, child in list(self.children.items()):
            code = child.process.poll()
            if code is None or self._stop.is_set():
                continue
            uptime = time.monotonic() - child.started_at
            log.error("host process %d (pid %d) exited with code %s", index, child.process.pid, code)
            self._close_fd(child)
            if not child.ready or uptime < MIN_UPTIME_S:
                log.error("host process %d crashed %.1f s after it started: stopping", index, uptime)
                return False
            self._spawn(index)
        return True

    def stop_children(self) -> None:
        """SIGTERM every child, wait up to `stop_timeout` s, then SIGKILL the rest; reap them all."""
        running = [c for c in self.children.values() if c.process.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("host process %d (pid %d) did not stop in time: killing it", child.index, child.process.pid)
                child.process.kill()
                child.process.wait()
        for child in self.children.values():
            self._close_fd(child)

    @staticmethod
    def _close_fd(child: _Child) -> None:
        if child.ready_fd is not None:
            os.close(child.ready_fd)
            child.ready_fd = None


def exit_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent (the supervisor) dies; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def report_ready(fd: int | None) -> None:
    """Tell the supervisor this child listens (no-op outside a supervisor)."""
    if fd is None:
        return
    try:
        os.write(fd, READY)
    finally:
        os.close(fd)
