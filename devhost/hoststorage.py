"""Names the host uses for its own state in the AzureWebJobsStorage account.

Timer status, blob receipts and listener locks all live in the `azure-webjobs-hosts` container under
the host ID, and are keyed by the function's full method name, `Host.Functions.{name}` for script
(non-.NET) functions.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Mapping

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient

HOST_CONTAINER = "azure-webjobs-hosts"


def function_id(function_name: str) -> str:
    """The id the host keys a function's state by (its full method name)."""
    return f"Host.Functions.{function_name}"


def default_host_id(environ: Mapping[str, str] | None = None) -> str:
    """`AzureFunctionsWebHost__hostid`, else one derived from the site or machine name like the host's.

    The host lower-cases the name, keeps letters, digits and dashes, and cuts it to 32 characters.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("AzureFunctionsWebHost__hostid")
    if explicit:
        return explicit
    name = env.get("WEBSITE_SITE_NAME") or socket.gethostname() or "devhost"
    return re.sub(r"[^a-z0-9-]", "", name.lower())[:32].rstrip("-") or "devhost"


async def ensure_container(service: BlobServiceClient, name: str) -> None:
    """Create the container unless it exists."""
    with contextlib.suppress(ResourceExistsError):
        await service.create_container(name)
