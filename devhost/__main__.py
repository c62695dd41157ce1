"""`python -m devhost`: serve the app like `func start` (Ctrl-C or SIGTERM stops it cleanly)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from devhost.clock import Clock, SystemClock, VirtualClock
from devhost.host import Host, builtin_service_factories
from devhost.hostconfig import read_local_settings

DEFAULT_PORT = 7071


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Local Azure Functions host (devhost).")
    parser.add_argument("--app", type=Path, default=Path(), help="the function app directory (default: .)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: local.settings.json Host.LocalHttpPort, else 7071)"
    )
    parser.add_argument("--enforce-keys", action="store_true", help="require function/master keys like Azure")
    parser.add_argument("--virtual-clock", action="store_true", help="timers run on a virtual clock (tests)")
    parser.add_argument("--no-services", action="store_true", help="HTTP only: do not start timer/blob listeners")
    return parser.parse_args(argv)


def render_functions(host: Host) -> str:
    """The function list in Core Tools' `func start` layout."""
    lines = ["", "Functions:", ""]
    for name, kind, url in host.function_table():
        lines.append(f"        {name}: {kind} {url}".rstrip())
        lines.append("")
    if host.keys is not None:
        lines.append(f"Keys enforced. Master key: {host.keys.master}")
        for key_name, value in host.keys.host_keys.items():
            lines.append(f"Host key '{key_name}': {value}")
        lines.append("")
    return "\n".join(lines) + "\n"


async def serve(args: argparse.Namespace) -> int:
    app_dir = args.app.resolve()
    port = args.port if args.port is not None else (read_local_settings(app_dir).local_http_port or DEFAULT_PORT)
    clock: Clock = VirtualClock() if args.virtual_clock else SystemClock()
    host = Host(
        app_dir,
        host=args.host,
        port=port,
        clock=clock,
        enforce_keys=args.enforce_keys,
        services=() if args.no_services else builtin_service_factories(),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await host.start()
    try:
        sys.stdout.write(render_functions(host))
        sys.stdout.write(f"Host started at {host.url} (routePrefix '{host.config.route_prefix}'). Ctrl-C to stop.\n")
        sys.stdout.flush()
        await stopping.wait()
    finally:
        sys.stdout.write("Stopping host...\n")
        await host.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The Azure SDKs log every request and response at INFO; the host's console does not show those.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    # Like the worker, one loop for the life of the process, never closed: the app's clients are
    # bound to it and may still be closed by the app's exit handlers.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(args))
    except Exception as exc:  # a load error: say why, like the host does, and exit non-zero
        logging.getLogger("devhost").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
