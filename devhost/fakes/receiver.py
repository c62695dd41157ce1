"""A small HTTP server that records the POSTs it receives: a stand-in webhook endpoint for tests."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web
from multidict import CIMultiDict

from devhost.fakes.runtime import ServerThread


@dataclass(frozen=True)
class Received:
    path: str
    headers: CIMultiDict[str]
    body: bytes


class WebhookReceiver:
    """Records every POST to any path and answers `status` (settable, or `fail_next`)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        self._failures: list[int] = []
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._record)
        self._server = ServerThread(app)
        self.url = self._server.url

    def fail_next(self, times: int = 1, status: int = 500) -> None:
        """Answer the next `times` POSTs with `status` (then `self.status` again)."""
        self._failures.extend([status] * times)

    async def _record(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, CIMultiDict(request.headers), await request.read()))
        status = self._failures.pop(0) if self._failures else self.status
        return web.Response(status=status, text="received")

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
