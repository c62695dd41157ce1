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

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from devhost.clock import Clock, VirtualClock
from devhost.host import Host

T = TypeVar("T")


class HostThread:
    """A started Host on a dedicated thread and loop; `stop()` (or leaving the `with`) shuts it down."""

    def __init__(self, app_dir: Path, *, port: int = 0, clock: Clock | None = None, **host_kwargs: Any) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="devhost-loop", daemon=True)
        self._thread.start()
        self.host = Host(app_dir, port=port, clock=self.clock, **host_kwargs)
        try:
            self.url: str = self.call(self.host.start())
        except BaseException:
            self._shutdown_loop()
            raise

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run `coro` on the host's loop and return its result (exceptions propagate)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the host, then the loop and its thread. Safe to call twice."""
        if self.loop.is_closed():
            return
        try:
            self.call(self.host.stop())
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        async def drain() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        try:
            self.call(drain(), timeout=10.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10.0)
            self.loop.close()

    def __enter__(self) -> HostThread:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
