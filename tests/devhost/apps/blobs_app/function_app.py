"""Blob-trigger functions for tests/devhost/test_blobs.py; containers come from app settings."""

from __future__ import annotations

from typing import Any

import azure.functions as func

app = func.FunctionApp()

# (function, InputStream fields, content) per invocation, in order.
CALLS: list[tuple[str, dict[str, Any]]] = []
# blob name -> how many more invocations for it must fail (flaky).
FAILURES_LEFT: dict[str, int] = {}


def _record(function: str, blob: func.InputStream) -> None:
    CALLS.append(
        (
            function,
            {
                "name": blob.name,
                "length": blob.length,
                "uri": blob.uri,
                "content": blob.read(),
                "metadata": blob.metadata,
                "properties": blob.blob_properties,
            },
        )
    )


@app.blob_trigger(arg_name="blob", path="%RECORDINGS_CONTAINER%/in/{name}.txt", connection="AzureWebJobsStorage")
async def recorder(blob: func.InputStream) -> None:
    _record("recorder", blob)


@app.blob_trigger(arg_name="blob", path="%FLAKY_CONTAINER%/{name}", connection="AzureWebJobsStorage")
def flaky(blob: func.InputStream) -> None:
    _record("flaky", blob)
    key = (blob.name or "").split("/", 1)[1]
    if FAILURES_LEFT.get(key, 0) > 0:
        FAILURES_LEFT[key] -= 1
        raise RuntimeError(f"failing {key} on purpose")


@app.blob_trigger(
    arg_name="blob",
    path="%EVENTS_CONTAINER%/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource.EVENT_GRID,
)
async def on_event(blob: func.InputStream) -> None:
    _record("on_event", blob)
