"""Running a fake provider as a process: `python -m devhost.fakes.razorpay|stripe [--port N] ...`.

Credentials come from the flags, else from the variables the app reads (so the app and the fake
agree when both are started from one environment), else from the fake's test defaults.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from devhost.fakes.base import FakeProvider


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--webhook-url", default=None, help="where to POST webhooks (default: record only)")
    return parser


def run_until_signalled(fake: FakeProvider, name: str) -> int:
    """Serve until SIGINT or SIGTERM; the first stdout line names the URL."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    with fake:
        sys.stdout.write(f"fake {name} listening on {fake.url}\n")
        sys.stdout.flush()
        stop.wait()
    return 0
