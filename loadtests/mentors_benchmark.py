"""Mentor discovery benchmark through devhost: cache hits, cache misses and the Redis ceiling.

    .venv/bin/python -m loadtests.mentors_benchmark [--seconds 15] [--users 500,1000,2000] [--processes 1,2]

One run: for each process count, a fresh devhost (`--processes N`, N host processes on one port, like
FUNCTIONS_WORKER_PROCESS_COUNT=N) serving `loadtests/ceiling_app` (the product's mentor routes plus a
bare function returning the same bytes from Redis), private PostgreSQL/Redis/Azurite on 127.0.0.1
from `devhost.services.start_stack("test")`, 1,000 seeded mentors. For each user level the
open-loop generator offers users / 1.5 requests/s (1-2 s think time, performance.md §7) to:

- hit:     GET /api/mentors (the default first page; the same cached bytes every time);
- ceiling: GET /api/ceiling/mentors (one Redis GET of the hit's exact bytes, nothing else);
- browse:  what users do: 24 pages (3 sorts x 6 skill filters, and pages 2-4 of two sorts) picked
           with Zipf weights, while a mentor changes their hourly rate `--writes-per-second` times a
           second through PUT /api/mentors/me/hourly-rate; every write bumps `mentors:list`, so each
           page is recomputed once per write (one process recomputes, the others wait for it);
- miss:    GET /api/mentors?min_rating=<unique> (a new cache variant each time: DB query + store),
           the worst case no real traffic reaches.

Then a closed-loop probe (64 connections, back to back) measures each one's throughput, so hits
can be reported as a share of the ceiling. Bounded: every phase lasts `--seconds` (capped at 60).
Prints Markdown for loadtests/README.md and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis

from devhost.services import start_stack
from loadtests.openloop import Request, Result, Target, closed_loop, open_loop
from shared.auth.tokens import issue_access_token

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "loadtests" / "ceiling_app"
MENTORS = 1000

SEED = """
INSERT INTO users (id, email, name, role, password_hash)
SELECT gen_random_uuid(), 'bench' || g || '@example.com', 'Mentor ' || g, 'mentor', 'unused'
FROM generate_series(1, $1::int) g;
INSERT INTO mentors (id, headline, bio, skills, languages, years_experience, timezone, hourly_rate_minor, currency,
                     rating, rating_count)
SELECT id, 'Senior engineer #' || n || ' - Python, Go, system design', repeat('bio text ', 40),
       (ARRAY['python', 'go', 'sql', 'k8s', 'react'])[1:1 + n % 5], ARRAY['en'], n % 30, 'Asia/Kolkata',
       50000 + (n * 37) % 200000, 'INR', round((1 + (n * 7 % 400) / 100.0)::numeric, 2), n % 90
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) u;
ANALYZE users;
ANALYZE mentors;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (loopback only)
        body: bytes = response.read()
        return body


async def seed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for statement in SEED.split(";"):
            if statement.strip():
                await conn.execute(statement, *([MENTORS] if "$1" in statement else []))
    finally:
        await conn.close()


async def writer_token(database_url: str, signing_key: str) -> str:
    """An access token of one seeded mentor, as login would issue it (an hour long)."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT id, auth_version FROM users WHERE role = 'mentor' ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    assert row is not None
    return issue_access_token(
        signing_key,
        user_id=row["id"],
        role="mentor",
        version=row["auth_version"],
        session_id=uuid.uuid4(),
        now=int(time.time()),
        ttl_s=3600,
    )


async def drain(base: str, limit_s: float = 30.0) -> None:
    """Wait (bounded) until the host answers promptly again: the previous phase's queue is gone."""
    deadline, quick = time.perf_counter() + limit_s, 0
    while quick < 5 and time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(get, f"{base}/api/ceiling/mentors")
        except OSError:
            quick = 0
            continue
        quick = quick + 1 if time.perf_counter() - started < 0.05 else 0
        await asyncio.sleep(0.2)


def row(label: str, users: int, result: Result) -> str:
    return (
        f"| {users} | {label} | {result.offered_rps:.0f} | {result.requests} | {result.achieved_rps:.0f} | "
        f"{100 * result.success:.2f} % | {result.percentile(50):.1f} | {result.percentile(95):.1f} | "
        f"{result.percentile(97.5):.1f} | {result.percentile(99):.1f} | {result.generator_cpu_s / result.seconds:.0%} |"
    )


def browse_pages(base: str) -> list[str]:
    """The pages the browse phase reads, most popular first: first pages of every sort and skill
    filter, and pages 2-4 of the rating and price sorts (cursors taken from the pages before)."""
    sorts = ["sort=rating", "sort=newest", "sort=price&currency=INR"]
    skills = ["", "&skill=python", "&skill=go", "&skill=sql", "&skill=k8s", "&skill=react"]
    first_pages = [f"{base}/api/mentors?{sort}{skill}" for skill in skills for sort in sorts]
    later_pages: dict[str, list[str]] = {}
    for sort in ("sort=rating", "sort=price&currency=INR"):
        url = f"{base}/api/mentors?{sort}"
        for _ in range(3):
            cursor = json.loads(get(url))["next_cursor"]
            url = f"{base}/api/mentors?{sort}&cursor={urllib.parse.quote(cursor)}"
            later_pages.setdefault(sort, []).append(url)
    # unfiltered first pages, then pages 2, 3 and 4 of the two sorts, then the skill filters
    deeper = [later_pages[sort][depth] for depth in range(3) for sort in later_pages]
    return first_pages[:3] + deeper + first_pages[3:]


def zipf_picker(pages: list[str], seed: int = 7) -> Target:
    """Request i reads a page drawn with probability proportional to 1 / rank (a fixed seed)."""
    chooser = random.Random(seed)
    weights = [1 / rank for rank in range(1, len(pages) + 1)]
    return lambda _i: chooser.choices(pages, weights)[0]


def rate_writer(base: str, token: str) -> Target:
    """PUT hourly-rate with a new amount each time: a committed write that bumps `mentors:list`."""
    headers = {"Authorization": f"Bearer {token}"}
    return lambda i: Request(
        f"{base}/api/mentors/me/hourly-rate", "PUT", {"amount_minor": 60_000 + i, "currency": "INR"}, headers
    )


async def browse(base: str, plan: Plan, pages: list[str], rate: float, users: int) -> tuple[Result, Result]:
    reads = open_loop(zipf_picker(pages), rate=rate, seconds=plan.seconds, users=users)
    if plan.writes_per_second <= 0:
        return await reads, Result(offered_rps=0.0, seconds=plan.seconds)
    writes = open_loop(rate_writer(base, plan.writer_token), rate=plan.writes_per_second, seconds=plan.seconds, users=4)
    return await asyncio.gather(reads, writes)


@dataclass(frozen=True)
class Plan:
    levels: list[int]  # users
    seconds: float  # per phase
    writes_per_second: float  # during browse
    writer_token: str  # a seeded mentor's access token


async def measure(base: str, plan: Plan) -> dict[str, Any]:
    unique = itertools.count(1)
    pages = browse_pages(base)
    # Misses last at each level: the requests they leave queued would otherwise land on the next phase.
    targets: dict[str, Target] = {
        "hit": lambda _i: f"{base}/api/mentors",
        "ceiling": lambda _i: f"{base}/api/ceiling/mentors",
        # a min_rating no earlier request used: a new cache variant, so a database query every time
        "miss": lambda _i: f"{base}/api/mentors?min_rating={next(unique) / 1e9:.9f}",
    }
    open_results: dict[str, dict[str, Result]] = {}
    for users in plan.levels:
        rate = users / 1.5
        level = open_results[str(users)] = {}
        for label, url_for in targets.items():
            if label == "miss":  # browse before the misses (see above)
                await drain(base)
                level["browse"], level["browse writes"] = await browse(base, plan, pages, rate, users)
            await drain(base)
            await open_loop(url_for, rate=min(rate, 200), seconds=1, users=users)  # warm connections and caches
            level[label] = await open_loop(url_for, rate=rate, seconds=plan.seconds, users=users)
    closed = {}
    for label, url_for in targets.items():
        await drain(base)
        closed[label] = await closed_loop(url_for, connections=64, seconds=plan.seconds)
    return {"open": open_results, "closed": closed}


def wait_until_started(log: Path, process: subprocess.Popen[bytes]) -> None:
    """Until devhost prints `Host started at` (with several processes: once all of them listen)."""
    deadline = time.monotonic() + 120
    while "Host started at" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"devhost did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def serve_and_measure(processes: int, env: dict[str, str], redis_url: str, plan: Plan) -> dict[str, Any]:
    """A fresh devhost with `processes` host processes, measured at every level, then stopped."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "devhost", "--app", str(APP), "--port", str(port), "--no-services"]
    command += ["--processes", str(processes)]
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "devhost.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL)
        try:
            wait_until_started(log, proc)
            hit_bytes = get(f"{base}/api/mentors")
            with redis.Redis.from_url(redis_url) as client:
                client.set("bench:ceiling", hit_bytes)
            assert get(f"{base}/api/ceiling/mentors") == hit_bytes
            load_before = os.getloadavg()[0]
            figures = asyncio.run(measure(base, plan))
            health = json.loads(get(f"{base}/api/health"))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    return {**figures, "health": health, "payload": len(hit_bytes), "load_before": load_before}


def print_run(processes: int, run: dict[str, Any]) -> None:
    print(f"\n#### {processes} host process{'es' if processes > 1 else ''} (1-minute load average before: ", end="")
    print(f"{run['load_before']:.2f})\n")
    columns = ["users", "target", "offered req/s", "requests", "achieved req/s", "success", "p50 ms", "p95", "p97.5"]
    print("| " + " | ".join([*columns, "p99", "gen CPU"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for users, results in run["open"].items():
        for label, result in results.items():
            print(row(label, int(users), result))
    closed: dict[str, Result] = run["closed"]
    print("\n| closed loop, 64 connections | req/s | p50 ms | p99 ms | success |")
    print("| --- | --- | --- | --- | --- |")
    for label, result in closed.items():
        print(
            f"| {label} | {result.achieved_rps:.0f} | {result.percentile(50):.1f} | {result.percentile(99):.1f} | "
            f"{100 * result.success:.2f} % |"
        )
    print(f"\napp cache counters of the process that answered /api/health: {json.dumps(run['health'].get('cache'))}")


def print_summary(runs: dict[int, dict[str, Any]]) -> None:
    baseline = runs[min(runs)]["closed"]["ceiling"].achieved_rps
    print(f"\n#### Side by side (baseline: the {min(runs)}-process ceiling of this run, {baseline:.0f} req/s)\n")
    print(
        "| processes | ceiling req/s | ceiling / baseline | hit req/s | hit / same ceiling | hit / baseline "
        "| miss req/s | 1,000 users hit | 2,000 users hit | 1,000 users browse | 2,000 users browse |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for processes, run in runs.items():
        closed: dict[str, Result] = run["closed"]
        ceiling, hit = closed["ceiling"].achieved_rps, closed["hit"].achieved_rps

        def level(users: str, label: str, run: dict[str, Any] = run) -> str:
            result = run["open"].get(users, {}).get(label)
            return "-" if result is None else f"{100 * result.success:.2f} %, p97.5 {result.percentile(97.5):.1f} ms"

        print(
            f"| {processes} | {ceiling:.0f} | {ceiling / baseline:.2f} | {hit:.0f} | {hit / ceiling:.2f} | "
            f"{hit / baseline:.2f} | {closed['miss'].achieved_rps:.0f} | {level('1000', 'hit')} | "
            f"{level('2000', 'hit')} | {level('1000', 'browse')} | {level('2000', 'browse')} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--users", default="500,1000,2000")
    parser.add_argument("--processes", default="1,2", help="devhost process counts to compare in this run")
    parser.add_argument("--writes-per-second", type=float, default=2.0, help="hourly-rate writes during browse")
    args = parser.parse_args()
    seconds = min(args.seconds, 60)
    levels = [int(u) for u in args.users.split(",")][:5]
    writes = min(max(args.writes_per_second, 0.0), 50.0)
    counts = [min(max(int(p), 1), 4) for p in args.processes.split(",")][:3]
    stack = start_stack("test")
    try:
        env = {
            **os.environ,
            "DATABASE_URL": stack.database_url,
            "REDIS_URL": stack.redis_url,
            "AZURE_STORAGE_CONNECTION_STRING": stack.storage_connection_string,
            "AzureWebJobsStorage": stack.storage_connection_string,
            "DURABLE_TASK_HUB": "bench",
            "JWT_SIGNING_KEY": secrets.token_hex(32),
        }
        subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=ROOT, env=env, check=True)
        asyncio.run(seed(stack.database_url))
        token = asyncio.run(writer_token(stack.database_url, env["JWT_SIGNING_KEY"]))
        plan = Plan(levels, seconds, writes, token)
        runs = {count: serve_and_measure(count, env, stack.redis_url, plan) for count in counts}
    finally:
        stack.stop()

    payload = runs[counts[0]]["payload"]
    print(f"{MENTORS} mentors seeded; the hit/ceiling payload is {payload:,} bytes; {seconds:.0f} s per phase;")
    print(f"browse: {writes:g} hourly-rate writes/s beside the reads")
    for processes, run in runs.items():
        print_run(processes, run)
    print_summary(runs)

    def brief(result: Result) -> dict[str, Any]:
        return {**vars(result), "latencies_ms": len(result.latencies_ms)}

    raw = {
        processes: {
            "open": {users: {k: brief(r) for k, r in rs.items()} for users, rs in run["open"].items()},
            "closed": {k: brief(r) for k, r in run["closed"].items()},
            "load_before": run["load_before"],
        }
        for processes, run in runs.items()
    }
    print("\n" + json.dumps(raw, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
