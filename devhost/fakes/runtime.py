"""An aiohttp application served on 127.0.0.1 from its own thread and event loop.

The fakes are called by synchronous SDKs (razorpay, stripe) from test threads and by the app under
devhost from another loop, so each fake owns a loop of its own: nothing the caller does can block
it. Test-side controls run on that loop through `call()`, so the fake's state is only ever touched
from one thread.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from devhost.loop_thread import LoopThread


class ServerThread(LoopThread):
    """Serve `app` on 127.0.0.1:`port` (0 = a free port) until `stop()`."""

    def __init__(self, app: web.Application, *, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__("fake-provider")
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        try:
            self.port = self.call(self._start(host, port))
        except BaseException:
            self.close()
            raise
        self.url = f"http://{host}:{self.port}"

    async def _start(self, host: str, port: int) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # the bound socket tells the port chosen for port=0
        assert isinstance(server, asyncio.base_events.Server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def stop(self) -> None:
        """Stop serving, then the loop and its thread. Safe to call twice."""
        if self.closed:
            return
        try:
            self.call(self._runner.cleanup(), timeout=15.0)
        finally:
            self.close()
