"""The host's blob-trigger bookkeeping in the AzureWebJobsStorage account: receipts and the poison queue.

- A receipt is an empty blob `azure-webjobs-hosts/blobreceipts/{hostId}/{functionId}/{etag}/{container}/{blob}`
  with metadata `Completed=true` (`BlobReceiptManager`). It is written only after the function
  succeeded, so a blob whose run was interrupted is delivered again (at-least-once). devhost also
  completes the receipt of a poisoned blob, with the extra metadata `Failed=true`, so that it is not
  delivered again (the host reaches the same end through its internal queue's dequeue count).
- Before running a function for a blob version, a host process takes a lease on its receipt (creating
  it without `Completed`), then checks again that it is not completed, like the host's
  `BlobQueueTriggerExecutor`: so when several host processes (FUNCTIONS_WORKER_PROCESS_COUNT,
  scale-out) see the same new blob, one runs the function and the others skip it.
- A blob that failed every attempt is reported as a JSON `BlobTriggerMessage` in the queue
  `webjobs-blobtrigger-poison`, base64-encoded like the host's queue messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue import BinaryBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from devhost.hoststorage import HOST_CONTAINER, ensure_container
from devhost.leases import BlobLease

log = logging.getLogger("devhost.blobs")

POISON_QUEUE = "webjobs-blobtrigger-poison"
# BlobReceiptManager.LeasePeriod; renewed while the function runs.
RECEIPT_LEASE_PERIOD = timedelta(minutes=1)


@dataclass(frozen=True)
class BlobVersion:
    """One committed version of a blob, as a function's trigger saw it."""

    function_id: str
    container: str
    blob: str
    etag: str
    blob_type: str = "BlockBlob"


class BlobReceipts:
    """Receipts and poison messages for one host ID in the host storage account."""

    def __init__(self, connection_string: str, host_id: str) -> None:
        self._connection_string = connection_string
        self.host_id = host_id
        self._service: BlobServiceClient | None = None
        self._container_ready = False
        self._queue_ready = False
        # Completed receipts never change back, so each is read from storage at most once per process.
        self._completed: set[BlobVersion] = set()

    def receipt_name(self, version: BlobVersion) -> str:
        """The receipt blob's name inside `azure-webjobs-hosts`."""
        return f"blobreceipts/{self.host_id}/{version.function_id}/{version.etag}/{version.container}/{version.blob}"

    async def is_completed(self, version: BlobVersion) -> bool:
        """Whether a completed receipt exists for this blob version."""
        if version in self._completed:
            return True
        blob = self._blob_service().get_blob_client(HOST_CONTAINER, self.receipt_name(version))
        try:
            properties = await blob.get_blob_properties()
        except ResourceNotFoundError:
            return False
        if properties.metadata.get("Completed", "").lower() == "true":
            self._completed.add(version)
            return True
        return False

    async def lease(self, version: BlobVersion) -> BlobLease | None:
        """Lease the receipt (created pending if absent); None when another host process holds it."""
        service = await self._ready_service()
        lease = BlobLease(service.get_blob_client(HOST_CONTAINER, self.receipt_name(version)), RECEIPT_LEASE_PERIOD)
        return lease if await lease.try_acquire() else None

    async def complete(self, version: BlobVersion, *, failed: bool = False, lease: BlobLease | None = None) -> None:
        """Write the completed receipt (`failed` marks a poisoned blob), under `lease` if it is held."""
        service = await self._ready_service()
        metadata = {"Completed": "true"}
        if failed:
            metadata["Failed"] = "true"
        blob = service.get_blob_client(HOST_CONTAINER, self.receipt_name(version))
        await blob.upload_blob(b"", overwrite=True, metadata=metadata, lease=lease.client if lease else None)
        self._completed.add(version)

    async def send_to_poison_queue(self, version: BlobVersion) -> None:
        """Queue the host's `BlobTriggerMessage` for a blob that exhausted its attempts."""
        message = {
            "Type": "BlobTrigger",
            "FunctionId": version.function_id,
            "BlobType": version.blob_type,
            "ContainerName": version.container,
            "BlobName": version.blob,
            "ETag": version.etag,
        }
        async with QueueClient.from_connection_string(
            self._connection_string, POISON_QUEUE, message_encode_policy=BinaryBase64EncodePolicy()
        ) as queue:
            if not self._queue_ready:
                with contextlib.suppress(ResourceExistsError):
                    await queue.create_queue()
                self._queue_ready = True
            await queue.send_message(json.dumps(message, separators=(",", ":")).encode())

    async def close(self) -> None:
        """Close the storage client."""
        if self._service is not None:
            await self._service.close()
            self._service = None

    async def _ready_service(self) -> BlobServiceClient:
        service = self._blob_service()
        if not self._container_ready:
            await ensure_container(service, HOST_CONTAINER)
            self._container_ready = True
        return service

    def _blob_service(self) -> BlobServiceClient:
        if self._service is None:
            self._service = BlobServiceClient.from_connection_string(self._connection_string)
        return self._service
