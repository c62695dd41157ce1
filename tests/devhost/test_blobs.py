"""BlobTriggerPoller against a real Azurite: receipts, overwrites, at-least-once, poison, EventGrid mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from azure.functions.meta import Datum
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy
from azure.storage.queue.aio import QueueClient

from devhost.blob_receipts import POISON_QUEUE
from devhost.blobs import BlobPath, BlobPathError, BlobTriggerPoller
from devhost.hoststorage import HOST_CONTAINER
from devhost.invoker import Invoker
from devhost.loader import FunctionSpec, LoadedApp, load_app

APP_DIR = Path(__file__).parent / "apps" / "blobs_app"


class SpyInvoker(Invoker):
    """The real invoker, recording trigger metadata and the peak number of concurrent invocations."""

    def __init__(self, *, delay: float = 0.0, crash_after_run: bool = False) -> None:
        super().__init__()
        self.metadata: list[dict[str, Datum]] = []
        self.running = 0
        self.peak = 0
        self.delay = delay
        self.crash_after_run = crash_after_run

    async def invoke(self, spec: FunctionSpec, trigger: Datum, trigger_metadata: Any = None, *a: Any, **kw: Any) -> Any:
        self.metadata.append(dict(trigger_metadata or {}))
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.delay)
            result = await super().invoke(spec, trigger, trigger_metadata, *a, **kw)
        finally:
            self.running -= 1
        if self.crash_after_run:
            raise asyncio.CancelledError  # the host process dies before it records the receipt
        return result


@pytest.fixture(scope="module")
def app() -> LoadedApp:
    return load_app(APP_DIR)


@pytest.fixture
def recorded(app: LoadedApp) -> Iterator[tuple[list[tuple[str, dict[str, Any]]], dict[str, int]]]:
    module = app.get("recorder").user_function.__globals__
    module["CALLS"].clear()
    module["FAILURES_LEFT"].clear()
    yield module["CALLS"], module["FAILURES_LEFT"]
    module["CALLS"].clear()
    module["FAILURES_LEFT"].clear()


@pytest.fixture
async def storage(storage_connection_string: str) -> AsyncIterator[BlobServiceClient]:
    async with BlobServiceClient.from_connection_string(storage_connection_string) as service:
        yield service


@pytest.fixture
async def containers(storage: BlobServiceClient) -> dict[str, str]:
    """Fresh containers for this test, as the app settings the paths refer to."""
    suffix = uuid4().hex[:10]
    env = {
        "RECORDINGS_CONTAINER": f"rec-{suffix}",
        "FLAKY_CONTAINER": f"flaky-{suffix}",
        "EVENTS_CONTAINER": f"ev-{suffix}",
    }
    for name in env.values():
        await storage.create_container(name)
    return env


PollerFactory = Callable[..., BlobTriggerPoller]


@pytest.fixture
async def new_poller(
    app: LoadedApp, containers: dict[str, str], storage_connection_string: str
) -> AsyncIterator[PollerFactory]:
    """Builds pollers over this test's containers (a fresh host id unless given); stops them all after."""
    made: list[BlobTriggerPoller] = []

    def make(
        names: list[str],
        invoker: Invoker | None = None,
        *,
        host_id: str | None = None,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> BlobTriggerPoller:
        poller = BlobTriggerPoller(
            [app.get(name) for name in names],
            invoker or Invoker(),
            lambda _setting: storage_connection_string,
            host_id=host_id or f"h-{uuid4().hex[:8]}",
            environ=containers if environ is None else environ,
            **kwargs,
        )
        made.append(poller)
        return poller

    yield make
    for poller in made:
        await poller.stop()


async def upload(storage: BlobServiceClient, container: str, name: str, data: bytes, **kwargs: Any) -> str:
    result = await storage.get_blob_client(container, name).upload_blob(data, overwrite=True, **kwargs)
    return str(result["etag"])


async def test_receipt_prevents_redelivery_and_overwrite_redelivers(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    container = containers["RECORDINGS_CONTAINER"]
    host_id = f"h-{uuid4().hex[:8]}"
    etag = await upload(storage, container, "in/clip one.txt", b"hello", metadata={"owner": "ana"})
    await upload(storage, container, "in/clip.bin", b"wrong extension")
    await upload(storage, container, "elsewhere/clip.txt", b"wrong prefix")
    invoker = SpyInvoker()
    poller = new_poller(["recorder"], invoker, host_id=host_id)
    assert await poller.poll_once() == 1
    assert await poller.poll_once() == 0

    ((function, blob),) = calls
    assert function == "recorder"
    assert blob["name"] == f"{container}/in/clip one.txt"
    assert blob["content"] == b"hello"
    assert blob["length"] == 5
    assert blob["uri"].endswith(f"/devstoreaccount1/{container}/in/clip%20one.txt")
    assert blob["metadata"] == {"owner": "ana"}
    assert blob["properties"]["ContentLength"] == 5
    assert blob["properties"]["ETag"] == etag
    assert blob["properties"]["BlobType"] == "Block"
    metadata = invoker.metadata[0]
    assert metadata["name"] == Datum("clip one", "string")  # binding data from the path's {name}
    assert metadata["BlobTrigger"] == Datum(f"{container}/in/clip one.txt", "string")
    assert json.loads(metadata["sys"].value)["MethodName"] == "recorder"

    receipt = storage.get_blob_client(
        HOST_CONTAINER, f"blobreceipts/{host_id}/Host.Functions.recorder/{etag}/{container}/in/clip one.txt"
    )
    assert (await receipt.get_blob_properties()).metadata == {"Completed": "true"}

    # A restarted host reads the receipt from storage: no delivery. An overwrite has a new ETag: delivered.
    await poller.stop()
    restarted = new_poller(["recorder"], host_id=host_id)
    assert await restarted.poll_once() == 0
    await upload(storage, container, "in/clip one.txt", b"hello again")
    assert await restarted.poll_once() == 1
    assert await restarted.poll_once() == 0
    assert [blob["content"] for _, blob in calls] == [b"hello", b"hello again"]


async def test_failure_then_success_delivers_twice_then_never_again(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, failures_left = recorded
    failures_left["doc.pdf"] = 1
    await upload(storage, containers["FLAKY_CONTAINER"], "doc.pdf", b"%PDF")
    poller = new_poller(["flaky"])
    assert await poller.poll_once() == 1
    assert await poller.poll_once() == 0
    assert [blob["content"] for _, blob in calls] == [b"%PDF", b"%PDF"]


async def test_crash_before_the_receipt_redelivers_after_restart(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    host_id = f"h-{uuid4().hex[:8]}"
    await upload(storage, containers["FLAKY_CONTAINER"], "a.csv", b"1,2")
    crashing = new_poller(["flaky"], SpyInvoker(crash_after_run=True), host_id=host_id)
    await crashing.poll_once()
    await crashing.stop()
    restarted = new_poller(["flaky"], host_id=host_id)
    assert await restarted.poll_once() == 1
    assert await restarted.poll_once() == 0
    assert len(calls) == 2


async def test_five_failures_poison_the_blob(
    recorded: Any,
    containers: dict[str, str],
    storage: BlobServiceClient,
    new_poller: PollerFactory,
    storage_connection_string: str,
) -> None:
    calls, failures_left = recorded
    container = containers["FLAKY_CONTAINER"]
    host_id = f"h-{uuid4().hex[:8]}"
    failures_left["bad.json"] = 100
    etag = await upload(storage, container, "bad.json", b"{")
    poller = new_poller(["flaky"], host_id=host_id)
    assert await poller.poll_once() == 1
    assert await poller.poll_once() == 0
    assert len(calls) == 5

    async with QueueClient.from_connection_string(
        storage_connection_string, POISON_QUEUE, message_decode_policy=BinaryBase64DecodePolicy()
    ) as queue:
        messages = [json.loads(m.content) for m in await queue.peek_messages(max_messages=32)]
    assert {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.flaky",
        "BlobType": "BlockBlob",
        "ContainerName": container,
        "BlobName": "bad.json",
        "ETag": etag,
    } in messages

    receipt = storage.get_blob_client(
        HOST_CONTAINER, f"blobreceipts/{host_id}/Host.Functions.flaky/{etag}/{container}/bad.json"
    )
    assert (await receipt.get_blob_properties()).metadata == {"Completed": "true", "Failed": "true"}
    await poller.stop()
    restarted = new_poller(["flaky"], host_id=host_id)
    assert await restarted.poll_once() == 0


async def test_concurrency_is_capped(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    for index in range(6):
        await upload(storage, containers["FLAKY_CONTAINER"], f"n{index}", b"x")
    invoker = SpyInvoker(delay=0.05)
    poller = new_poller(["flaky"], invoker, concurrency=2)
    assert await poller.poll_once() == 6
    assert invoker.peak == 2
    assert len(calls) == 6


async def test_event_grid_mode_delivers_each_commit_without_receipts(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    container = containers["EVENTS_CONTAINER"]
    host_id = f"h-{uuid4().hex[:8]}"
    await upload(storage, container, "before-start", b"old")
    poller = new_poller(["on_event"], host_id=host_id, poll_interval=3600)
    await poller.start()
    await upload(storage, container, "new", b"v1")
    assert await poller.poll_once() == 1  # blobs from before the subscription raise no event
    assert await poller.poll_once() == 0
    await upload(storage, container, "new", b"v2")
    assert await poller.poll_once() == 1
    await poller.deliver("on_event", f"{container}/new")  # the webhook: a duplicate event
    with pytest.raises(KeyError):
        await poller.deliver("no_such_function", f"{container}/new")
    with pytest.raises(ValueError, match="does not match"):
        await poller.deliver("on_event", "other-container/new")
    assert [(blob["name"], blob["content"]) for _, blob in calls] == [
        (f"{container}/new", b"v1"),
        (f"{container}/new", b"v2"),
        (f"{container}/new", b"v2"),
    ]
    receipts = [
        b.name async for b in storage.get_container_client(HOST_CONTAINER).list_blobs(f"blobreceipts/{host_id}/")
    ]
    assert receipts == []


async def test_one_broken_function_does_not_stop_the_others(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    await upload(storage, containers["FLAKY_CONTAINER"], "ok", b"fine")
    environ = {**containers, "RECORDINGS_CONTAINER": f"missing-{uuid4().hex[:8]}"}
    poller = new_poller(["recorder", "flaky"], host_id="h-broken", environ=environ)
    assert await poller.poll_once() == 1
    assert [function for function, _ in calls] == ["flaky"]


async def test_background_polling_delivers_new_blobs(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    poller = new_poller(["flaky"], poll_interval=0.05)
    await poller.start()
    await upload(storage, containers["FLAKY_CONTAINER"], "late", b"arrived")
    async with asyncio.timeout(5):
        while not calls:  # noqa: ASYNC110 - the app appends from the poller's task
            await asyncio.sleep(0.02)
    assert calls[0][1]["content"] == b"arrived"


@pytest.mark.parametrize(
    ("path", "container", "prefix", "name", "expected"),
    [
        ("uploads/{name}", "uploads", "", "a/b.mp4", {"name": "a/b.mp4"}),
        ("uploads/raw-{name}.mp4", "uploads", "raw-", "raw-x.mp4", {"name": "x"}),
        ("uploads/raw-{name}.mp4", "uploads", "raw-", "raw-x.mov", None),
        ("uploads/{stem}.{ext}", "uploads", "", "a.b.c", {"stem": "a.b", "ext": "c"}),
        ("uploads/fixed.txt", "uploads", "fixed.txt", "fixed.txt", {}),
    ],
)
def test_blob_paths_give_a_prefix_and_binding_data(
    path: str, container: str, prefix: str, name: str, expected: dict[str, str] | None
) -> None:
    parsed = BlobPath.parse(path, environ={})
    assert (parsed.container, parsed.prefix) == (container, prefix)
    assert parsed.match(name) == expected


@pytest.mark.parametrize(
    "path", ["uploads", "{container}/{name}", "Up_Loads/{name}", "uploads/{name", "uploads/{a}{a}", "%NOPE%/{name}"]
)
def test_invalid_blob_paths_name_the_function(path: str) -> None:
    with pytest.raises(BlobPathError, match="'ingest'"):
        BlobPath.parse(path, function_name="ingest", environ={})


async def test_two_host_processes_scanning_one_account_run_a_new_blob_once(
    recorded: Any, containers: dict[str, str], storage: BlobServiceClient, new_poller: PollerFactory
) -> None:
    calls, _ = recorded
    host_id = f"h-{uuid4().hex[:8]}"  # one host (app), two processes: same receipts
    await upload(storage, containers["RECORDINGS_CONTAINER"], "in/shared.txt", b"once")
    # The delay keeps the first run going while the other process scans and finds no receipt yet.
    first, second = (new_poller(["recorder"], SpyInvoker(delay=0.5), host_id=host_id) for _ in range(2))
    await asyncio.gather(first.poll_once(), second.poll_once())
    await asyncio.gather(first.poll_once(), second.poll_once())
    assert [blob["content"] for _, blob in calls] == [b"once"]
