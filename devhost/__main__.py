"""`python -m devhost`: serve the app like `func start` (Ctrl-C or SIGTERM stops it cleanly).

With `--processes N` (or FUNCTIONS_WORKER_PROCESS_COUNT=N in the environment or local.settings.json)
N host processes share the port under a supervisor (devhost.supervisor); the hidden
`--process-index`/`--ready-fd` options mark such a child.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from devhost.clock import Clock, SystemClock, VirtualClock
from devhost.host import Host, builtin_service_factories
from devhost.hostconfig import ConfigError, process_count, read_local_settings
from devhost.http_server import FunctionKeys
from devhost.supervisor import Supervisor, exit_with_parent, report_ready

DEFAULT_PORT = 7071
# Keys shared by the supervisor's children when keys are enforced (one key set for the whole "host").
MASTER_KEY_ENV, HOST_KEY_ENV = "DEVHOST_MASTER_KEY", "DEVHOST_DEFAULT_HOST_KEY"


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
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="host processes sharing the port (default: FUNCTIONS_WORKER_PROCESS_COUNT, else 1)",
    )
    parser.add_argument("--process-index", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
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


def shared_keys() -> FunctionKeys | None:
    """The keys a supervisor handed to its children, if any."""
    master = os.environ.get(MASTER_KEY_ENV)
    if not master:
        return None
    return FunctionKeys(master=master, host_keys={"default": os.environ.get(HOST_KEY_ENV, "")})


def resolved_port(args: argparse.Namespace) -> int:
    return int(args.port if args.port is not None else (read_local_settings(args.app).local_http_port or DEFAULT_PORT))


async def serve(args: argparse.Namespace) -> int:
    app_dir = args.app.resolve()
    child = args.process_index is not None
    clock: Clock = VirtualClock() if args.virtual_clock else SystemClock()
    host = Host(
        app_dir,
        host=args.host,
        port=resolved_port(args),
        clock=clock,
        enforce_keys=args.enforce_keys,
        keys=shared_keys(),
        services=() if args.no_services else builtin_service_factories(),
        reuse_port=child,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await host.start()
    try:
        if not child:
            sys.stdout.write(render_functions(host))
            sys.stdout.write(
                f"Host started at {host.url} (routePrefix '{host.config.route_prefix}'). Ctrl-C to stop.\n"
            )
        elif args.process_index == 0:  # the supervisor prints "Host started" once all children listen
            sys.stdout.write(render_functions(host))
        sys.stdout.flush()
        report_ready(args.ready_fd)
        await stopping.wait()
    finally:
        sys.stdout.write("Stopping host...\n")
        await host.stop()
    return 0


def supervise(args: argparse.Namespace, count: int) -> int:
    """Serve with `count` host processes on one port (devhost.supervisor)."""
    child_args = ["--app", str(args.app.resolve())]
    flags = (("--virtual-clock", args.virtual_clock), ("--no-services", args.no_services))
    child_args += [flag for flag, on in flags if on]
    env = dict(os.environ)
    if args.enforce_keys:
        keys = FunctionKeys.generate()
        env.update({MASTER_KEY_ENV: keys.master, HOST_KEY_ENV: keys.host_keys["default"]})
        child_args.append("--enforce-keys")
    try:
        return Supervisor(child_args, count=count, host=args.host, port=resolved_port(args), env=env).run()
    except OSError as exc:  # the port cannot be had
        logging.getLogger("devhost").error("%s", exc)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    child = args.process_index is not None
    if child:
        exit_with_parent()
    process = f" [{args.process_index}:%(process)d]" if child else ""
    logging.basicConfig(level=logging.INFO, format=f"[%(asctime)s]{process} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The Azure SDKs log every request and response at INFO; the host's console does not show those.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    # Like the worker, one loop for the life of the process, never closed: the app's clients are
    # bound to it and may still be closed by the app's exit handlers.
    if not child:
        try:
            settings = read_local_settings(args.app.resolve())
            count = process_count(
                {"FUNCTIONS_WORKER_PROCESS_COUNT": str(args.processes)} if args.processes is not None else None,
                local_values=settings.values,
            )
        except ConfigError as exc:
            logging.getLogger("devhost").error("%s", exc)
            return 1
        if count > 1:
            return supervise(args, count)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(args))
    except Exception as exc:  # a load error: say why, like the host does, and exit non-zero
        logging.getLogger("devhost").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
