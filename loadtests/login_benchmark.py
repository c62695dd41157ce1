"""Login benchmark through devhost: logins/s and latency beside this machine's bcrypt ceiling.

    python -m venv /tmp/loadvenv && /tmp/loadvenv/bin/pip install -r loadtests/requirements.txt
    LOCUST=/tmp/loadvenv/bin/locust .venv/bin/python -m loadtests.login_benchmark [--seconds 30]

Bounded: each phase runs `--seconds` (capped at 120) with a fixed number of users; everything
listens on 127.0.0.1 only (private PostgreSQL/Redis/Azurite from devhost.services, devhost on a
free port). Prints the figures as a Markdown table for loadtests/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bcrypt

from devhost.services import start_stack

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password"  # noqa: S105 (seeded test accounts on a private database)


def bcrypt_ceiling(cost: int, threads: int, seconds: float = 5.0) -> dict[str, float]:
    """checkpw/s on one thread, and with `threads` threads in parallel (the same machine's ceiling)."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(cost))

    def spin(deadline: float) -> int:
        n = 0
        while time.perf_counter() < deadline:
            bcrypt.checkpw(PASSWORD.encode(), hashed)
            n += 1
        return n

    started = time.perf_counter()
    per_core = spin(started + seconds) / (time.perf_counter() - started)
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        counts = list(pool.map(spin, [started + seconds] * threads))
        parallel = sum(counts) / (time.perf_counter() - started)
    return {"per_core": per_core, "cores": float(threads), "ceiling": per_core * threads, "parallel": parallel}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/{path}", data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
        return json.loads(response.read() or b"null")


class App:
    """devhost serving the app on a free loopback port with `env`."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", str(self.port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                call(self.base, "GET", "health")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("devhost did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run_locust(base: str, fixture: Path, classes: list[str], users: int, seconds: int, out: Path) -> dict[str, Any]:
    locust = os.environ.get("LOCUST", "locust")
    subprocess.run(
        [
            locust,
            "-f",
            str(ROOT / "loadtests" / "locust_login.py"),
            "--headless",
            "-H",
            base,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--csv",
            str(out),
            "--only-summary",
            "--stop-timeout",
            "5",
            *classes,
        ],
        env={**os.environ, "BENCH_FIXTURE": str(fixture)},
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds + 60,
    )
    rows = {}
    with open(f"{out}_stats.csv") as stats:
        for row in csv.DictReader(stats):
            rows[row["Name"]] = row
    return rows


def summary(row: dict[str, str] | None, seconds: int) -> str:
    if row is None:
        return " | ".join(["-"] * 7)
    count, failures = int(row["Request Count"]), int(row["Failure Count"])
    return f"{count} | {count / seconds:.2f} | {row['50%']} | {row['95%']} | {row['97.5%']} | {row['99%']} | {failures}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--cost", type=int, default=12)
    args = parser.parse_args()
    seconds = min(args.seconds, 120)
    cores = os.cpu_count() or 2
    ceiling = bcrypt_ceiling(args.cost, cores)
    stack = start_stack("test")
    try:
        base_env = {
            **os.environ,
            "DATABASE_URL": stack.database_url,
            "REDIS_URL": stack.redis_url,
            "AZURE_STORAGE_CONNECTION_STRING": stack.storage_connection_string,
            "AzureWebJobsStorage": stack.storage_connection_string,
            "DURABLE_TASK_HUB": "bench",
            "JWT_SIGNING_KEY": secrets.token_hex(32),
            "BCRYPT_COST": str(args.cost),
            "BCRYPT_THREADS": str(cores),
            "LOGIN_LIMIT_PER_EMAIL": "1000000",
            "LOGIN_LIMIT_PER_IP": "1000000",
            "REGISTER_LIMIT_PER_IP": "1000000",
        }
        subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=ROOT, env=base_env, check=True)
        results: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            fixture = Path(tmp) / "fixture.json"
            phases = [
                ("baseline (other endpoints alone)", {}, ["OtherUser"], 40),
                ("login alone, share 1.0", {"LOGIN_ADMISSION_SHARE": "1.0"}, ["LoginUser"], 2 * cores + 2),
                ("login alone, default share 0.7", {}, ["LoginUser"], 2 * cores + 2),
                ("mixed: other endpoints + login overload (share 0.7)", {}, ["LoginUser", "OtherUser"], 60),
            ]
            for index, (label, extra, classes, users) in enumerate(phases):
                app = App({**base_env, **extra})
                try:
                    if not fixture.exists():
                        accounts, tokens = [], []
                        for i in range(20):
                            email = f"bench{i}-{secrets.token_hex(3)}@example.com"
                            body = {"email": email, "password": PASSWORD, "name": "Bench", "role": "student"}
                            call(app.base, "POST", "auth/register", body)
                            accounts.append({"email": email, "password": PASSWORD})
                            tokens.append(call(app.base, "POST", "auth/login", accounts[-1])["access_token"])
                        fixture.write_text(json.dumps({"accounts": accounts, "tokens": tokens}))
                    results[label] = run_locust(app.base, fixture, classes, users, seconds, Path(tmp) / f"p{index}")
                finally:
                    app.stop()
    finally:
        stack.stop()
    print(
        f"bcrypt cost {args.cost}: {ceiling['per_core']:.2f} checks/s per core x {cores} cores = "
        f"{ceiling['ceiling']:.2f}/s ceiling ({ceiling['parallel']:.2f}/s measured with {cores} threads)"
    )
    print("\n| phase | operation | requests | per s | p50 ms | p95 | p97.5 | p99 | failures |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, rows in results.items():
        for name in ("login", "login shed (503)", "GET users/me", "GET admin/ui-config"):
            if name in rows:
                print(f"| {label} | {name} | {summary(rows[name], seconds)} |")
    print("\n" + json.dumps({"ceiling": ceiling, "results": results}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
