"""Outgoing webhooks of a fake provider: signed POSTs to one URL, with duplicates and reordering.

Events are delivered one at a time in the order they were sent. Switches:
- `duplicates = n`: every event is POSTed n more times (the same event id: at-least-once delivery);
- `hold()` ... `release(order)`: events are kept back and then delivered in another order
  ("reverse" or "shuffle"): providers do not guarantee ordering;
- `retry_delays = [s1, s2, ...]`: a failed POST (no answer or not 2xx) is retried in the background
  after s1, then s2, ... seconds, like the providers' retry schedules (shortened).
Each attempt is signed afresh by the provider's `sign` function (Stripe puts a timestamp in its
signature). Every attempt is recorded in `deliveries`, also when no URL is set (status None).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

Signer = Callable[["OutgoingEvent"], Mapping[str, str]]
DELIVERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class OutgoingEvent:
    event_id: str
    event_type: str
    body: bytes


@dataclass(frozen=True)
class Delivery:
    """One POST of an event (or its recording when no URL was set: `status` None, `error` set)."""

    event_id: str
    event_type: str
    url: str | None
    headers: Mapping[str, str]
    body: bytes
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class WebhookSender:
    sign: Signer
    url: str | None = None
    duplicates: int = 0
    retry_delays: list[float] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    events: list[OutgoingEvent] = field(default_factory=list)
    _held: list[OutgoingEvent] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _session: aiohttp.ClientSession | None = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def hold(self) -> None:
        """Keep events back until `release()`."""
        if self._held is None:
            self._held = []

    async def release(self, order: Literal["fifo", "reverse", "shuffle"] = "reverse") -> None:
        """Deliver the held events in `order` and stop holding."""
        held, self._held = self._held or [], None
        if order == "reverse":
            held.reverse()
        elif order == "shuffle":
            random.shuffle(held)
        await self._deliver_all(held)

    async def send(self, events: list[OutgoingEvent]) -> None:
        """Deliver `events` now (or hold them), in order; returns when they were POSTed."""
        self.events.extend(events)
        if self._held is not None:
            self._held.extend(events)
            return
        await self._deliver_all(events)

    def send_soon(self, events: list[OutgoingEvent]) -> None:
        """Send in the background: for events caused by an API call, sent after its answer."""
        task = asyncio.get_running_loop().create_task(self.send(events))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait until every background send has finished."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def redeliver(self, event_id: str) -> Delivery:
        """POST an already sent event again (a provider retry)."""
        for event in self.events:
            if event.event_id == event_id:
                async with self._lock:
                    return await self._post(event)
        raise KeyError(event_id)

    async def _deliver_all(self, events: list[OutgoingEvent]) -> None:
        async with self._lock:
            for event in events:
                for _ in range(1 + self.duplicates):
                    await self._post(event)

    def _schedule_retries(self, event: OutgoingEvent) -> None:
        task = asyncio.get_running_loop().create_task(self._retry(event, list(self.retry_delays)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _retry(self, event: OutgoingEvent, delays: list[float]) -> None:
        for delay in delays:
            await asyncio.sleep(delay)
            async with self._lock:
                delivery = await self._post(event, retry=False)
            if delivery.ok:
                return

    async def _post(self, event: OutgoingEvent, *, retry: bool = True) -> Delivery:
        headers = {"Content-Type": "application/json", **self.sign(event)}
        if self.url is None:
            delivery = Delivery(event.event_id, event.event_type, None, headers, event.body, None, "no webhook URL set")
        else:
            delivery = await self._attempt(event, headers, self.url)
        self.deliveries.append(delivery)
        if retry and not delivery.ok and self.retry_delays and self.url is not None:
            self._schedule_retries(event)
        return delivery

    async def _attempt(self, event: OutgoingEvent, headers: Mapping[str, str], url: str) -> Delivery:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S))
        try:
            async with self._session.post(url, data=event.body, headers=dict(headers)) as response:
                await response.read()
                status: int | None = response.status
                error = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        return Delivery(event.event_id, event.event_type, url, headers, event.body, status, error)

    async def reset(self, url: str | None) -> None:
        """Forget every event and switch; cancel background sends and retries."""
        await self._cancel_pending()
        self.url, self.duplicates, self.retry_delays, self._held = url, 0, [], None
        self.deliveries.clear()
        self.events.clear()

    async def _cancel_pending(self) -> None:
        tasks = list(self._pending)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self._cancel_pending()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def describe(self) -> list[dict[str, Any]]:
        """The deliveries as JSON-able dicts (for the control API)."""
        return [
            {
                "event_id": d.event_id,
                "event_type": d.event_type,
                "url": d.url,
                "status": d.status,
                "error": d.error,
                "headers": dict(d.headers),
            }
            for d in self.deliveries
        ]
