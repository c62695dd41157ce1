"""An aiohttp application served on 127.0.0.1 from its own thread and event loop.

The fakes are called by synchronous SDKs (razorpay, stripe) from test threads and by the app under
devhost from another loop, so each fake owns a loop of its own: nothing the caller does can block
it. Test-side controls run on that loop through `call()`, so the fake's state is only ever touched
from one thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ServerThread:
    """Serve `app` on 127.0.0.1:`port` (0 = a free port) until `stop()`."""

    def __init__(self, app: web.Application, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="fake-provider", daemon=True)
        self._thread.start()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        try:
            self.port = self.call(self._start(host, port))
        except BaseException:
            self._shutdown_loop()
            raise
        self.url = f"http://{host}:{self.port}"

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _start(self, host: str, port: int) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # the bound socket tells the port chosen for port=0
        assert isinstance(server, asyncio.base_events.Server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run `coro` on the server's loop and return its result (exceptions propagate)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def call_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """`call()` for callers on another event loop: awaits without blocking that loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        """Stop serving, then the loop and its thread. Safe to call twice."""
        if self.loop.is_closed():
            return
        try:
            self.call(self._runner.cleanup(), timeout=15.0)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        async def drain() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.call(drain(), timeout=10.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10.0)
            self.loop.close()
