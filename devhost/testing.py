"""Run a Host in a background thread with its own long-lived event loop, as the worker does.

The Durable SDK keeps a module-global aiohttp session bound to the first loop that used it (and
apps keep module-level pools the same way), so the host must live on one loop for the whole
process: never `asyncio.run` a host twice. Tests talk to it over real HTTP (`.url`) and run
coroutines on its loop with `.call(...)`. Several HostThreads may run one after another in a
process: on stop, the Durable service closes the SDK's session (as the worker's exit would), and
the app's own clients are per loop.

    with HostThread(Path("tests/devhost/apps/shape"), port=0) as ht:
        urllib.request.urlopen(f"{ht.url}/api/ping")
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from devhost.clock import Clock, VirtualClock
from devhost.host import Host
from devhost.loop_thread import LoopThread


class HostThread(LoopThread):
    """A started Host on a dedicated thread and loop; `stop()` (or leaving the `with`) shuts it down."""

    def __init__(self, app_dir: Path, *, port: int = 0, clock: Clock | None = None, **host_kwargs: Any) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        super().__init__("devhost-loop")
        self.host = Host(app_dir, port=port, clock=self.clock, **host_kwargs)
        try:
            self.url: str = self.call(self.host.start())
        except BaseException:
            self.close()
            raise

    def stop(self) -> None:
        """Stop the host, then the loop and its thread. Safe to call twice."""
        if self.closed:
            return
        try:
            self.call(self.host.stop())
        finally:
            self.close()

    def __enter__(self) -> HostThread:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
