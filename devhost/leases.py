"""Blob leases in the host storage account: how host processes keep each other from doing work twice.

The host uses them for two things, and so does devhost:
- the **listener lock** of a singleton listener (timer triggers): a lease on
  `azure-webjobs-hosts/locks/{hostId}/{functionId}.Listener`, held for as long as the listener runs
  and renewed in the background (`singleton.listenerLockPeriod`, 60 s by default). Another process
  that cannot take it retries every `singleton.listenerLockRecoveryPollingInterval` (60 s);
- the **blob receipt** of a blob being processed (`BlobReceiptManager.TryAcquireLeaseAsync`), so that
  two processes that both saw a new blob run the function once.

A lease is taken on an existing blob, so the blob is created (empty) first if needed. Azure allows
15 to 60 s leases; a process that dies without releasing its lease blocks the others until it runs
out, as in Azure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob.aio import BlobClient, BlobLeaseClient, BlobServiceClient

from devhost.hoststorage import HOST_CONTAINER, ensure_container, function_id

log = logging.getLogger("devhost.leases")

MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 15, 60


class BlobLease:
    """One lease on `blob`: `try_acquire()`, renewed every third of the period until `release()`.

    If a renewal fails (storage unreachable for a whole period, or the lease was broken), `held`
    turns false and `on_lost` is called; the holder must stop the work the lease guards.
    """

    def __init__(
        self, blob: BlobClient, period: timedelta, *, on_lost: Callable[[], None] | None = None, create: bool = True
    ) -> None:
        seconds = int(period.total_seconds())
        if not MIN_LEASE_SECONDS <= seconds <= MAX_LEASE_SECONDS:
            raise ValueError(f"a blob lease lasts {MIN_LEASE_SECONDS} to {MAX_LEASE_SECONDS} s, not {seconds}")
        self.blob = blob
        self.seconds = seconds
        self._on_lost = on_lost
        self._create = create
        self._client: BlobLeaseClient | None = None
        self._renewal: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> BlobLeaseClient | None:
        """The SDK's lease client while the lease is held (pass it as `lease=` to writes)."""
        return self._client

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; False if another holder does."""
        if self._client is not None:
            return True
        if self._create:
            with contextlib.suppress(ResourceExistsError):
                await self.blob.upload_blob(b"", overwrite=False)
        client = BlobLeaseClient(self.blob)
        try:
            await client.acquire(lease_duration=self.seconds)
        except HttpResponseError as exc:
            if exc.status_code == 409:  # LeaseAlreadyPresent
                return False
            raise
        self._client = client
        self._renewal = asyncio.create_task(self._renew_forever(client), name=f"lease:{self.blob.blob_name}")
        return True

    async def release(self) -> None:
        """Give the lease back at once (others need not wait for it to run out)."""
        client, self._client = self._client, None
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.gather(self._renewal, return_exceptions=True)
            self._renewal = None
        if client is not None:
            try:
                await client.release()
            except Exception as exc:  # it runs out by itself
                log.warning("releasing the lease on %s failed: %s", self.blob.blob_name, exc)

    async def _renew_forever(self, client: BlobLeaseClient) -> None:
        interval = self.seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await client.renew()
            except Exception as exc:
                # Two more tries fit in the period; after that the lease may be someone else's.
                log.warning("renewing the lease on %s failed: %s", self.blob.blob_name, exc)
                for _ in range(2):
                    await asyncio.sleep(interval / 3)
                    with contextlib.suppress(Exception):
                        await client.renew()
                        break
                else:
                    log.error("lost the lease on %s", self.blob.blob_name)
                    if self._client is client:
                        self._client = None
                        if self._on_lost is not None:
                            self._on_lost()
                    return


def listener_lock_name(host_id: str, function_id: str) -> str:
    """The listener lock blob's name inside `azure-webjobs-hosts`."""
    return f"locks/{host_id}/{function_id}.Listener"


class ListenerLocks:
    """The singleton listener locks of one host ID (`lock_for(function_name)`), over one storage client."""

    def __init__(self, connection_string: str, host_id: str, period: timedelta) -> None:
        self._connection_string = connection_string
        self.host_id = host_id
        self.period = period
        self._service: BlobServiceClient | None = None
        self._container_ready = False

    async def lock_for(self, function_name: str) -> BlobLease:
        """The (not yet acquired) listener lock of a function."""
        if self._service is None:
            self._service = BlobServiceClient.from_connection_string(self._connection_string)
            self._container_ready = False
        if not self._container_ready:
            await ensure_container(self._service, HOST_CONTAINER)
            self._container_ready = True
        name = listener_lock_name(self.host_id, function_id(function_name))
        return BlobLease(self._service.get_blob_client(HOST_CONTAINER, name), self.period)

    async def close(self) -> None:
        """Close the storage client (locks must be released first); `lock_for` opens a new one."""
        if self._service is not None:
            await self._service.close()
            self._service = None
