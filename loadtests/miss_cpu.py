"""Python CPU per cache miss of mentor discovery, measured in-process, compared across git revisions.

    .venv/bin/python -m loadtests.miss_cpu [--rounds 2] [--seconds 8] [--tasks 24] REVISION [REVISION ...]

Private PostgreSQL/Redis/Azurite from `devhost.services.start_stack("test")`, migrated and seeded with
the discovery benchmark's 1,000 mentors (mentors_benchmark.seed). Then, round after round, each
revision in turn (`.` is the working tree; anything else is exported with `git archive`) runs in a
fresh process: `--tasks` tasks call `shared.mentors.service.list_mentors` with a `min_rating` no
earlier call used, so every call is a miss (query, serialisation, the cache's Redis calls), for a
warm-up and then `--seconds`, on an emptied Redis. Each run prints misses/s and
`time.process_time()` per miss (every thread of the process); alternating the revisions round by
round is what makes the comparison hold on a noisy machine. No HTTP, no Functions host: this is the
app's own share of a miss, not a request's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM_UP_S = 1.5


async def measure(tasks: int, seconds: float) -> dict[str, Any]:
    """In the child, whose working directory is the revision's code: misses until `seconds` pass."""
    sys.path.insert(0, os.getcwd())
    from shared import resources
    from shared.mentors.models import MentorQuery
    from shared.mentors.service import list_mentors

    database, cache = await resources.get_database(), await resources.get_cache()
    await (await resources.get_redis()).flushall()
    unique = iter(range(1, 10**9))  # over an emptied Redis: every variant is new
    done, stop = 0, False

    async def miss_after_miss() -> None:
        nonlocal done
        while not stop:
            query = MentorQuery.model_validate({"min_rating": next(unique) / 1e9})
            await list_mentors(database, cache, query)
            done += 1

    async def run(seconds: float) -> tuple[int, float, float]:
        nonlocal done, stop
        done, stop = 0, False
        workers = [asyncio.create_task(miss_after_miss()) for _ in range(tasks)]
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        stop = True
        await asyncio.gather(*workers)
        return done, time.perf_counter() - wall, time.process_time() - cpu

    await run(WARM_UP_S)
    misses_before = cache.stats.misses
    misses, wall, cpu = await run(seconds)
    assert cache.stats.misses - misses_before == misses, "a call was not a miss"
    await resources.close_resources()
    return {"misses": misses, "per_s": misses / wall, "cpu_ms": 1000 * cpu / misses}


def export(revision: str, into: Path) -> Path:
    if revision == ".":
        return ROOT
    target = into / revision.replace("/", "_")
    target.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("revisions", nargs="+")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds, rounds = min(args.seconds, 60), min(max(args.rounds, 1), 10)
    if args.child:
        print(json.dumps(asyncio.run(measure(args.tasks, seconds))))
        return 0

    from devhost.services import start_stack
    from loadtests.mentors_benchmark import seed

    stack = start_stack("test")
    results: dict[str, list[dict[str, Any]]] = {revision: [] for revision in args.revisions}
    try:
        env = {
            **os.environ,
            "DATABASE_URL": stack.database_url,
            "REDIS_URL": stack.redis_url,
            "AZURE_STORAGE_CONNECTION_STRING": stack.storage_connection_string,
            "JWT_SIGNING_KEY": secrets.token_hex(32),
        }
        subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=ROOT, env=env, check=True)
        asyncio.run(seed(stack.database_url))
        with tempfile.TemporaryDirectory() as scratch:
            code = {revision: export(revision, Path(scratch)) for revision in args.revisions}
            for round_number in range(1, rounds + 1):
                for revision in args.revisions:
                    command = [sys.executable, str(Path(__file__).resolve()), revision, "--child"]
                    command += ["--seconds", str(seconds), "--tasks", str(args.tasks)]
                    reply = subprocess.run(command, cwd=code[revision], env=env, check=True, capture_output=True)
                    figures = json.loads(reply.stdout.decode().splitlines()[-1])
                    results[revision].append(figures)
                    print(
                        f"round {round_number} {revision}: {figures['per_s']:.0f} misses/s, "
                        f"{figures['cpu_ms']:.3f} ms CPU per miss ({figures['misses']} misses)",
                        flush=True,
                    )
    finally:
        stack.stop()
    print("\n| revision | misses/s (median) | ms CPU per miss (median) | runs |")
    print("| --- | --- | --- | --- |")
    for revision, runs in results.items():
        per_s = statistics.median(r["per_s"] for r in runs)
        cpu_ms = statistics.median(r["cpu_ms"] for r in runs)
        print(f"| {revision} | {per_s:.0f} | {cpu_ms:.3f} | {len(runs)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
