"""Blob triggers: poll the storage account (Azurite) and deliver new or overwritten blobs.

Azurite emits no Event Grid events, so every blob trigger is fed by a container scan:

- The trigger's `path` (`container/{name}`, `container/prefix{name}.ext`, with `%Setting%` resolved)
  gives a static prefix for `list_blobs(name_starts_with=...)` and a regex whose groups are the
  binding data (`name`, ...), passed to the function as trigger metadata like the host does.
- `source="LogsAndContainerScan"` (the default): a blob version (function, container, blob, ETag) is
  delivered until a completed receipt exists (see `devhost.blob_receipts`), so an unchanged blob is
  not delivered again and an overwrite (new ETag) is. Receipts are written after success only:
  at-least-once, and a crash between runs re-delivers. Each delivery runs under a lease on its
  receipt, so of several host processes scanning the same account only one runs it.
- `source="EventGrid"` (the only mode on Flex Consumption): one delivery per commit seen, without
  receipts. Blobs present when the poller starts are not delivered (no event was raised for them
  while it was subscribed). Duplicates are possible, as with Event Grid: another host process, a
  restart during a run, or `deliver()` (the webhook) each deliver again.
- A delivery makes up to `max_attempts` attempts (the host's `maxDequeueCount`, 5); then the blob goes
  to the `webjobs-blobtrigger-poison` queue and is not delivered again.
- At most `concurrency` deliveries run at once. The whole blob is read into memory, as the host does
  for `InputStream`.

The trigger value is `Datum(bytes, 'bytes')` with trigger metadata `BlobTrigger` ("container/name"),
`Uri`, `Properties` (json), `Metadata` (json), the path's binding data and `sys`; the worker's
`blobTrigger` converter turns them into `func.InputStream`.

Not emulated: the host's scan back-off (up to a minute between scans in Azure); scans run every
`poll_interval` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.functions.meta import Datum
from azure.storage.blob import BlobProperties
from azure.storage.blob.aio import BlobServiceClient

from devhost.blob_receipts import BlobReceipts, BlobVersion
from devhost.hoststorage import default_host_id, function_id
from devhost.invoker import InvocationError, Invoker
from devhost.leases import BlobLease
from devhost.loader import FunctionSpec
from devhost.ncrontab import resolve_settings

log = logging.getLogger("devhost.blobs")

BLOB_TRIGGER = "blobTrigger"
HOST_STORAGE = "AzureWebJobsStorage"
EVENT_GRID = "EventGrid"
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class BlobPathError(ValueError):
    """A blob trigger path the host would refuse."""


@dataclass(frozen=True)
class BlobPath:
    """A blob trigger path: a literal container and a blob-name pattern with `{parameter}`s."""

    container: str
    prefix: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(
        cls, path: str, *, function_name: str = "<unknown>", environ: Mapping[str, str] | None = None
    ) -> BlobPath:
        """Parse `container/blob-pattern`; raise `BlobPathError` naming the function if invalid."""
        try:
            resolved = resolve_settings(path, function_name=function_name, environ=environ)
        except ValueError as exc:
            raise BlobPathError(str(exc)) from exc
        container, _, blob = resolved.strip().strip("/").partition("/")

        def fail(reason: str) -> BlobPathError:
            return BlobPathError(f"Invalid blob trigger path '{path}' of function '{function_name}': {reason}")

        if not blob:
            raise fail("expected 'container/blob-pattern', e.g. 'uploads/{name}'")
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", container) and container != "$root":
            raise fail(f"'{container}' is not a valid container name (a blob trigger's container must be literal)")
        regex, position, names = "", 0, set()
        for match in _PARAMETER.finditer(blob):
            if match.group(1) in names:
                raise fail(f"parameter '{match.group(1)}' appears twice")
            names.add(match.group(1))
            regex += re.escape(blob[position : match.start()]) + f"(?P<{match.group(1)}>.+)"
            position = match.end()
        if "{" in _PARAMETER.sub("", blob) or "}" in _PARAMETER.sub("", blob):
            raise fail("braces must enclose a parameter name such as {name}")
        regex += re.escape(blob[position:])
        first = _PARAMETER.search(blob)
        prefix = blob[: first.start()] if first else blob
        return cls(container, prefix, re.compile(regex, re.DOTALL))

    def match(self, blob_name: str) -> dict[str, str] | None:
        """The binding data for a blob name of this container, or None if the pattern does not match."""
        found = self.pattern.fullmatch(blob_name)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class _Watch:
    spec: FunctionSpec
    path: BlobPath
    connection: str
    event_grid: bool

    @property
    def function_id(self) -> str:
        return function_id(self.spec.name)

    @property
    def source(self) -> str:
        return EVENT_GRID if self.event_grid else "LogsAndContainerScan"


class BlobTriggerPoller:
    """Delivers blobs to every `blobTrigger` function in `functions` (other trigger types are ignored).

    `connection_string_for(setting_name)` gives the connection string for a binding's `connection`
    (default `AzureWebJobsStorage`, which also holds receipts and the poison queue).
    """

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        invoker: Invoker,
        connection_string_for: Callable[[str], str],
        *,
        poll_interval: float = 1.0,
        max_attempts: int = 5,
        concurrency: int = 4,
        host_id: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._invoker = invoker
        self._connection_string_for = connection_string_for
        self._poll_interval = poll_interval
        self._max_attempts = max_attempts
        self._semaphore = asyncio.Semaphore(concurrency)
        self._host_id = host_id or default_host_id(environ)
        self._watches: dict[str, _Watch] = {}
        for spec in functions:
            if spec.trigger_type != BLOB_TRIGGER:
                continue
            path = BlobPath.parse(str(spec.trigger.get("path", "")), function_name=spec.name, environ=environ)
            connection = str(spec.trigger.get("connection") or HOST_STORAGE)
            event_grid = str(spec.trigger.get("source", "")).lower() == EVENT_GRID.lower()
            self._watches[spec.name.lower()] = _Watch(spec, path, connection, event_grid)
        self._services: dict[str, BlobServiceClient] = {}
        self._receipts: BlobReceipts | None = None
        self._in_flight: set[BlobVersion] = set()
        self._seen_commits: dict[tuple[str, str, str], str] = {}  # EventGrid: (function, container, blob) -> ETag
        self._deliveries: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def function_names(self) -> list[str]:
        """The blob-trigger functions this poller serves."""
        return [watch.spec.name for watch in self._watches.values()]

    async def start(self) -> None:
        """Note the blobs that EventGrid-mode functions must not see, then scan every `poll_interval` s."""
        if self._loop_task is not None:
            return
        for watch in self._watches.values():
            if watch.event_grid:
                try:
                    async for properties in self._list(watch):
                        key = (watch.function_id, watch.path.container, properties.name)
                        self._seen_commits[key] = quoted_etag(properties.etag)
                except Exception:
                    log.exception("Blob trigger '%s': listing existing blobs failed", watch.spec.name)
        self._loop_task = asyncio.create_task(self._poll_forever(), name="blob-trigger-poller")

    async def stop(self) -> None:
        """Stop scanning, wait for deliveries in progress, close storage clients."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        for service in self._services.values():
            await service.close()
        self._services.clear()
        if self._receipts is not None:
            await self._receipts.close()
            self._receipts = None

    async def poll_once(self) -> int:
        """Scan once and wait for the deliveries it started; return how many blobs were delivered."""
        started = await self._scan_all()
        await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def deliver(self, name: str, blob_path: str) -> None:
        """Deliver `container/blob` to function `name` now, regardless of receipts (admin API, webhook).

        Raises KeyError for an unknown blob-trigger function, ValueError if the path does not match its
        trigger, ResourceNotFoundError if the blob does not exist.
        """
        watch = self._watches[name.lower()]
        container, _, blob_name = blob_path.strip("/").partition("/")
        if container != watch.path.container or watch.path.match(blob_name) is None:
            raise ValueError(f"'{blob_path}' does not match the trigger path of function '{watch.spec.name}'")
        client = self._service(watch.connection).get_blob_client(container, blob_name)
        properties = await client.get_blob_properties()
        await self._deliver(watch, properties, forced=True)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self._scan_all()
            except Exception:
                log.exception("Blob trigger scan failed")

    async def _scan_all(self) -> list[asyncio.Task[None]]:
        started: list[asyncio.Task[None]] = []
        for watch in self._watches.values():
            try:
                async for properties in self._list(watch):
                    if await self._is_new(watch, properties):
                        task = asyncio.create_task(self._deliver(watch, properties))
                        self._deliveries.add(task)
                        task.add_done_callback(self._deliveries.discard)
                        started.append(task)
            except ResourceNotFoundError:
                log.debug("Blob trigger '%s': container '%s' does not exist", watch.spec.name, watch.path.container)
            except Exception:
                log.exception("Blob trigger '%s': scanning '%s' failed", watch.spec.name, watch.path.container)
        return started

    async def _list(self, watch: _Watch) -> AsyncIterator[BlobProperties]:
        container = self._service(watch.connection).get_container_client(watch.path.container)
        async for properties in container.list_blobs(name_starts_with=watch.path.prefix or None, include=["metadata"]):
            if watch.path.match(properties.name) is not None:
                yield properties

    async def _is_new(self, watch: _Watch, properties: BlobProperties) -> bool:
        version = _version(watch, properties)
        if version in self._in_flight:
            return False
        if watch.event_grid:
            key = (watch.function_id, version.container, version.blob)
            if self._seen_commits.get(key) == version.etag:
                return False
            self._seen_commits[key] = version.etag
            return True
        return not await self._host_receipts().is_completed(version)

    async def _deliver(self, watch: _Watch, listed: BlobProperties, *, forced: bool = False) -> None:
        version = _version(watch, listed)
        self._in_flight.add(version)
        try:
            async with self._semaphore:
                if watch.event_grid or forced:
                    await self._attempt_all(watch, version)
                else:
                    await self._deliver_under_lease(watch, version)
        except Exception:
            log.exception(
                "Blob trigger '%s': delivering '%s/%s' failed", watch.spec.name, version.container, version.blob
            )
        finally:
            self._in_flight.discard(version)

    async def _deliver_under_lease(self, watch: _Watch, version: BlobVersion) -> None:
        """Run the function unless another host process holds the receipt or completed it meanwhile."""
        receipts = self._host_receipts()
        lease = await receipts.lease(version)
        if lease is None:
            log.debug("Blob '%s/%s': another host process is processing it", version.container, version.blob)
            return
        try:
            if not await receipts.is_completed(version):
                await self._attempt_all(watch, version, lease)
        finally:
            await lease.release()

    async def _attempt_all(self, watch: _Watch, version: BlobVersion, lease: BlobLease | None = None) -> None:
        client = self._service(watch.connection).get_blob_client(version.container, version.blob)
        for attempt in range(1, self._max_attempts + 1):
            try:
                downloader = await client.download_blob(
                    etag=version.etag, match_condition=MatchConditions.IfNotModified
                )
                content = await downloader.readall()
            except (ResourceNotFoundError, ResourceModifiedError):
                # Deleted or overwritten since the scan: the next scan sees the new version, if any.
                log.info("Blob '%s/%s' changed before delivery; skipped", version.container, version.blob)
                return
            metadata = _trigger_metadata(watch, client.url, downloader.properties)
            try:
                await self._invoker.invoke(
                    watch.spec,
                    Datum(content, "bytes"),
                    metadata,
                    reason=f"New blob detected({watch.source}): {version.container}/{version.blob}",
                )
            except InvocationError as exc:
                log.warning("Attempt %d/%d: %s", attempt, self._max_attempts, exc)
                continue
            if not watch.event_grid:
                await self._host_receipts().complete(version, lease=lease)
            return
        log.error(
            "Blob '%s/%s' failed %d times for function '%s'; moved to the poison queue",
            version.container,
            version.blob,
            self._max_attempts,
            watch.spec.name,
        )
        receipts = self._host_receipts()
        await receipts.send_to_poison_queue(version)
        if not watch.event_grid:
            await receipts.complete(version, failed=True, lease=lease)

    def _service(self, connection: str) -> BlobServiceClient:
        if connection not in self._services:
            self._services[connection] = BlobServiceClient.from_connection_string(
                self._connection_string_for(connection)
            )
        return self._services[connection]

    def _host_receipts(self) -> BlobReceipts:
        if self._receipts is None:
            self._receipts = BlobReceipts(self._connection_string_for(HOST_STORAGE), self._host_id)
        return self._receipts


def quoted_etag(etag: str | None) -> str:
    """The ETag as response headers carry it (quoted); blob listings give it bare."""
    value = str(etag or "")
    return value if value.startswith('"') else f'"{value}"'


def _version(watch: _Watch, properties: BlobProperties) -> BlobVersion:
    return BlobVersion(
        function_id=watch.function_id,
        container=watch.path.container,
        blob=str(properties.name),
        etag=quoted_etag(properties.etag),
        blob_type=str(getattr(properties.blob_type, "value", properties.blob_type) or "BlockBlob"),
    )


def _trigger_metadata(watch: _Watch, uri: str, properties: BlobProperties) -> dict[str, Datum]:
    """The host's blob trigger metadata, including the path's binding data."""
    container, blob = watch.path.container, str(properties.name)
    metadata: dict[str, Datum] = {
        "BlobTrigger": Datum(f"{container}/{blob}", "string"),
        "Uri": Datum(uri, "string"),
        "Properties": Datum(json.dumps(_properties_json(properties)), "json"),
        "Metadata": Datum(json.dumps(dict(properties.metadata or {})), "json"),
        "sys": Datum(
            json.dumps(
                {
                    "MethodName": watch.spec.name,
                    "UtcNow": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "RandGuid": str(uuid.uuid4()),
                }
            ),
            "json",
        ),
    }
    for name, value in (watch.path.match(blob) or {}).items():
        metadata[name] = Datum(value, "string")
    return metadata


def _properties_json(properties: BlobProperties) -> dict[str, Any]:
    """The fields of the .NET `BlobProperties` the host serializes, from the Python SDK's properties."""
    settings = properties.content_settings
    content_md5 = settings.content_md5 if settings else None
    blob_type = getattr(properties.blob_type, "value", properties.blob_type)
    return {
        "LastModified": _iso(properties.last_modified),
        "CreatedOn": _iso(properties.creation_time),
        "Metadata": dict(properties.metadata or {}),
        "BlobType": str(blob_type).removesuffix("Blob") if blob_type else "Block",
        "ContentLength": properties.size,
        "ContentType": settings.content_type if settings else None,
        "ContentEncoding": settings.content_encoding if settings else None,
        "ContentLanguage": settings.content_language if settings else None,
        "ContentDisposition": settings.content_disposition if settings else None,
        "CacheControl": settings.cache_control if settings else None,
        "ContentHash": base64.b64encode(bytes(content_md5)).decode() if content_md5 else None,
        "ETag": quoted_etag(properties.etag),
        "AccessTier": getattr(properties.blob_tier, "value", properties.blob_tier),
        "LeaseState": properties.lease.state if properties.lease else None,
        "LeaseStatus": properties.lease.status if properties.lease else None,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()
