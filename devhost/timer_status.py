"""Timer schedule status (the host's `ScheduleStatus`) and where it is persisted.

The real host (`StorageScheduleMonitor`) keeps one JSON blob per timer at
`azure-webjobs-hosts/timers/{hostId}/{timerName}/status` in the AzureWebJobsStorage account, where
`timerName` is the function's full method name, `Host.Functions.{name}` for script functions.
`BlobScheduleStatusStore` does the same against Azurite; `MemoryScheduleStatusStore` is for unit tests.

Dates are written as Json.NET writes a local `DateTime`: ISO 8601 with the zone's offset and at most
seven, trailing-zero-trimmed, fraction digits. An unset date is `DateTime.MinValue` (year 1), which we
read back as None (the host treats anything within a year of it as unset).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from devhost.hoststorage import HOST_CONTAINER, ensure_container, function_id

log = logging.getLogger("devhost.timers")

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def format_host_datetime(value: datetime | None, tz: tzinfo) -> str:
    """`value` as Json.NET serializes a local DateTime in zone `tz`; None as DateTime.MinValue."""
    if value is None:
        offset = datetime(1, 1, 2, tzinfo=tz).utcoffset() or timedelta(0)
        return "0001-01-01T00:00:00" + _format_offset(offset)
    local = value.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    return text + _format_offset(local.utcoffset() or timedelta(0))


def parse_host_datetime(text: str | None) -> datetime | None:
    """The inverse of `format_host_datetime` (also accepts 7 fraction digits and a `Z`)."""
    if not text:
        return None
    value = datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00"))
    if value.year < 2:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() / 60)  # truncated, like .NET "zzz"
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


@dataclass(frozen=True)
class ScheduleStatus:
    """The last and next occurrences and when they were recorded (None = never)."""

    last: datetime | None
    next: datetime | None
    last_updated: datetime | None

    def to_json(self, tz: tzinfo) -> dict[str, str]:
        """The host's JSON shape (`Last`, `Next`, `LastUpdated`) with times in zone `tz`."""
        return {
            "Last": format_host_datetime(self.last, tz),
            "Next": format_host_datetime(self.next, tz),
            "LastUpdated": format_host_datetime(self.last_updated, tz),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleStatus:
        """Read the host's JSON shape."""
        return cls(
            last=parse_host_datetime(data.get("Last")),
            next=parse_host_datetime(data.get("Next")),
            last_updated=parse_host_datetime(data.get("LastUpdated")),
        )


class ScheduleStatusStore(Protocol):
    """Where a timer's `ScheduleStatus` survives restarts (the host's `ScheduleMonitor` storage)."""

    async def get(self, function_name: str) -> ScheduleStatus | None:
        """The recorded status, or None if the timer never recorded one."""
        ...

    async def put(self, function_name: str, status: ScheduleStatus) -> None:
        """Record the status."""
        ...


class MemoryScheduleStatusStore:
    """Status kept in a dict: survives a scheduler restart within one process (unit tests)."""

    def __init__(self, tz: tzinfo = UTC) -> None:
        self.tz = tz
        self.documents: dict[str, str] = {}

    async def get(self, function_name: str) -> ScheduleStatus | None:
        """The recorded status, or None."""
        document = self.documents.get(function_id(function_name))
        return None if document is None else ScheduleStatus.from_json(json.loads(document))

    async def put(self, function_name: str, status: ScheduleStatus) -> None:
        """Record the status as the JSON the host would write."""
        self.documents[function_id(function_name)] = json.dumps(status.to_json(self.tz), separators=(",", ":"))


class BlobScheduleStatusStore:
    """Status blobs in the host storage account, at the host's paths."""

    def __init__(self, connection_string: str, host_id: str, tz: tzinfo = UTC) -> None:
        self._connection_string = connection_string
        self.host_id = host_id
        self.tz = tz
        self._container_checked = False

    def blob_name(self, function_name: str) -> str:
        """`timers/{hostId}/{timerName}/status` inside the `azure-webjobs-hosts` container."""
        return f"timers/{self.host_id}/{function_id(function_name)}/status"

    async def get(self, function_name: str) -> ScheduleStatus | None:
        """The recorded status, or None when the blob does not exist."""
        async with BlobServiceClient.from_connection_string(self._connection_string) as service:
            blob = service.get_blob_client(HOST_CONTAINER, self.blob_name(function_name))
            try:
                downloader = await blob.download_blob(encoding="utf-8")
                text = await downloader.readall()
            except ResourceNotFoundError:
                return None
        return ScheduleStatus.from_json(json.loads(text))

    async def put(self, function_name: str, status: ScheduleStatus) -> None:
        """Upload the status; like the host, a failure is logged, not raised (best effort)."""
        body = json.dumps(status.to_json(self.tz), separators=(",", ":"))
        try:
            async with BlobServiceClient.from_connection_string(self._connection_string) as service:
                if not self._container_checked:
                    await ensure_container(service, HOST_CONTAINER)
                    self._container_checked = True
                blob = service.get_blob_client(HOST_CONTAINER, self.blob_name(function_name))
                await blob.upload_blob(
                    body, overwrite=True, content_settings=ContentSettings(content_type="application/octet-stream")
                )
        except Exception:
            log.exception("Function '%s' failed to update the timer trigger status.", function_id(function_name))
