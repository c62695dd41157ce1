"""Login benchmark through devhost: logins/s and latency beside this machine's bcrypt ceiling.

    .venv/bin/python -m loadtests.login_benchmark [--seconds 30] [--env BCRYPT_NICE=0] [--app-cpus 1]

One run measures:

1. the bcrypt ceiling: `checkpw` per second on one thread x cores (and with one thread per core in
   parallel), at the app's cost, before the phases and again after them;
2. five phases, each on a fresh devhost process (the app as the Functions host serves it) with the
   same private PostgreSQL/Redis/Azurite from `devhost.services.start_stack("test")`, all on
   127.0.0.1, driven by the open-loop generator of `openloop.py` (request i is due at
   start + i / rate whatever happened to earlier ones; latency counts from that due time):
   - baseline: GET users/me (bearer token, one PK lookup) at 300/s and GET admin/ui-config
     (cache hit) at 100/s;
   - login alone with LOGIN_ADMISSION_SHARE=1.0, logins offered at 2 x the ceiling;
   - login alone with the default share (0.7), the same offer;
   - mixed: the baseline streams plus the same login offer, default share;
   - interleaved: on one host, the baseline streams throughout and the login offer switched off and
     on in alternating 5 s windows (`--seconds` of each), so the other endpoints' p99 with and
     without login load is compared under the same machine conditions, not minutes apart.

A 503 with Retry-After is shedding (reported apart, with its own latency); a 503 without it, any
other status and client timeouts (10 s) are failures. `--env` applies settings to every phase (to
compare variants); `--pin-generator CPU` pins the generator to that CPU during the phases (the
server keeps every core: bcrypt needs them all to reach the ceiling). `--app-cpus 1` gives devhost
and its bcrypt threads CPU 1 and everything else (PostgreSQL, Redis, Azurite, the generator) the
other CPUs: the app's machine runs only the app, as deployed; the ceiling is then that of the
app's CPUs. Bounded: every phase lasts `--seconds` (capped at 120); nothing leaves loopback.
Prints Markdown and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from devhost.services import start_stack
from loadtests.openloop import Request, Result, open_loop

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password"  # noqa: S105 (seeded test accounts on a private database)
ACCOUNTS = 20
ME_RATE, UI_RATE = 300.0, 100.0
LOGIN_OFFER = 2.0  # logins offered, as a multiple of the ceiling (performance.md §8, test 9)
MAX_CONNECTIONS = 200
SETTLE_S = 3.0  # past BCRYPT_MAX_WAIT_SECONDS (2 s): every queued hash is done or shed by then
WINDOW_S = 5.0  # one login-off or login-on window of the interleaved phase


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


def bcrypt_ceiling_on(cpus: set[int], cost: int) -> dict[str, float]:
    """bcrypt_ceiling measured on `cpus`, with one thread per CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return bcrypt_ceiling(cost, len(cpus))
    finally:
        os.sched_setaffinity(0, before)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One set-up request; a shed login (503 + Retry-After) is retried when the app says."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/{path}", data=data, method=method, headers=headers)  # noqa: S310
    for _ in range(10):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or exc.headers.get("Retry-After") is None:
                raise
            time.sleep(float(exc.headers["Retry-After"]))
    raise RuntimeError(f"{method} {path}: still shed after 10 attempts")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class App:
    """devhost serving the app on a free loopback port with `env`."""

    def __init__(self, env: dict[str, str], log: Path, cpus: set[int]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with log.open("w") as log_file:  # the host logs every invocation, as the Functions host does
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devhost", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            )
        for _ in range(300):
            try:
                call(self.base, "GET", "health")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("devhost did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def streams(base: str, fixture: dict[str, Any], kinds: list[str], login_rate: float) -> dict[str, tuple[Any, float]]:
    accounts, tokens = fixture["accounts"], fixture["tokens"]
    every: dict[str, tuple[Any, float]] = {
        "GET users/me": (
            lambda i: Request(f"{base}/api/users/me", headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"}),
            ME_RATE,
        ),
        "GET admin/ui-config": (lambda _i: f"{base}/api/admin/ui-config", UI_RATE),
        "login": (lambda i: Request(f"{base}/api/auth/login", "POST", accounts[i % len(accounts)]), login_rate),
    }
    return {name: every[name] for name in kinds}


async def run_phase(
    base: str, fixture: dict[str, Any], kinds: list[str], login_rate: float, seconds: float
) -> dict[str, Result]:
    chosen = streams(base, fixture, kinds, login_rate)
    # Warm connections and caches for the other routes; no logins (their queue would spill over).
    warm = [
        open_loop(target, rate=rate, seconds=2, users=MAX_CONNECTIONS)
        for name, (target, rate) in chosen.items()
        if name != "login"
    ]
    await asyncio.gather(*warm)
    results = await asyncio.gather(
        *(
            open_loop(target, rate=rate, seconds=seconds, users=MAX_CONNECTIONS, shed_ok=name == "login")
            for name, (target, rate) in chosen.items()
        )
    )
    return dict(zip(chosen, results, strict=True))


def merged(results: list[Result]) -> Result:
    """One Result holding every request of `results` (windows of one stream), over their total time."""
    total = Result(offered_rps=results[0].offered_rps, seconds=sum(r.seconds for r in results))
    for r in results:
        total.latencies_ms += r.latencies_ms
        total.shed_latencies_ms += r.shed_latencies_ms
        total.failures += r.failures
        total.generator_cpu_s += r.generator_cpu_s
        for status, count in r.statuses.items():
            total.statuses[status] = total.statuses.get(status, 0) + count
    return total


def cpu_times() -> list[int]:
    """The machine's CPU time so far in USER_HZ ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


@dataclass
class Window:
    """One login-off or login-on window of the interleaved phase."""

    login_on: bool
    results: dict[str, Result]
    cpu: list[int]  # cpu_times() spent during the window

    def share(self, index: int) -> float:
        return self.cpu[index] / max(1, sum(self.cpu))


async def run_interleaved(
    base: str, fixture: dict[str, Any], login_rate: float, seconds: float, window: float
) -> list[Window]:
    """The other endpoints without and with login load in alternating windows on one host.

    Two phases minutes apart compare two states of the machine as much as two loads (the baseline
    p99 alone moves 2x between runs here). Alternating `window`-second windows, login off then on,
    for `seconds` of each, puts both under the same conditions. After each login window the other
    streams run unmeasured for SETTLE_S, until the queued hashes are done or shed, so no login work
    spills into a measured login-off window.
    """
    chosen = streams(base, fixture, ["GET users/me", "GET admin/ui-config", "login"], login_rate)
    others = {name: stream for name, stream in chosen.items() if name != "login"}
    await asyncio.gather(*(open_loop(t, rate=r, seconds=2, users=MAX_CONNECTIONS) for t, r in others.values()))
    windows: list[Window] = []
    for _ in range(max(1, round(seconds / window))):
        for login_on in (False, True):
            running = chosen if login_on else others
            cpu_before = cpu_times()
            results = await asyncio.gather(
                *(
                    open_loop(t, rate=r, seconds=window, users=MAX_CONNECTIONS, shed_ok=name == "login")
                    for name, (t, r) in running.items()
                )
            )
            cpu = [after - before for before, after in zip(cpu_before, cpu_times(), strict=True)]
            windows.append(Window(login_on, dict(zip(running, results, strict=True)), cpu))
            if login_on:
                await asyncio.gather(
                    *(open_loop(t, rate=r, seconds=SETTLE_S, users=MAX_CONNECTIONS) for t, r in others.values())
                )
    return windows


def merged_windows(windows: list[Window]) -> dict[str, Result]:
    """Each stream's requests over all its windows, the other endpoints split by login off / on."""
    streams_of: dict[str, list[Result]] = {}
    for w in windows:
        for name, result in w.results.items():
            key = name if name == "login" else f"{name} (login {'on' if w.login_on else 'off'})"
            streams_of.setdefault(key, []).append(result)
    return {name: merged(results) for name, results in sorted(streams_of.items())}


def print_window_pairs(windows: list[Window]) -> None:
    """Each login-off window beside the login-on window after it: p99s, their ratio and the CPU spent.

    A burst on the machine lasting a few seconds lands in one window and swings the pooled p99; the
    median of the pair ratios is what a burst cannot move much. steal is CPU time the hypervisor
    took from this VM; nice is mostly bcrypt.
    """
    pairs = list(zip(windows[0::2], windows[1::2], strict=True))
    others = list(pairs[0][0].results)
    print(
        "\n| pair | "
        + " | ".join(f"{n} p99 off / on ms (ratio)" for n in others)
        + " | CPU off: busy, steal | CPU on: busy, nice, steal |"
    )
    print("| --- | " + " | ".join("---" for _ in others) + " | --- | --- |")
    ratios: dict[str, list[float]] = {name: [] for name in others}
    for i, (off, on) in enumerate(pairs, 1):
        cells = []
        for name in others:
            before, after = off.results[name].percentile(99), on.results[name].percentile(99)
            ratios[name].append(after / before)
            cells.append(f"{fmt(before)} / {fmt(after)} ({after / before:.2f}x)")
        busy_off, busy_on = 1 - off.share(3), 1 - on.share(3)
        print(
            f"| {i} | " + " | ".join(cells) + f" | {busy_off:.0%}, {off.share(7):.1%} | "
            f"{busy_on:.0%}, {on.share(1):.0%}, {on.share(7):.1%} |"
        )
    print("\n| other endpoint | median pair ratio | pairs within 1.25x |")
    print("| --- | --- | --- |")
    for name, values in ratios.items():
        within = sum(r <= 1.25 for r in values)
        print(f"| {name} | {statistics.median(values):.2f}x | {within} of {len(values)} |")


def seed(base: str) -> dict[str, Any]:
    accounts, tokens = [], []
    for i in range(ACCOUNTS):
        email = f"bench{i}-{secrets.token_hex(3)}@example.com"
        call(base, "POST", "auth/register", {"email": email, "password": PASSWORD, "name": "Bench", "role": "student"})
        accounts.append({"email": email, "password": PASSWORD})
        tokens.append(call(base, "POST", "auth/login", accounts[-1])["access_token"])
    return {"accounts": accounts, "tokens": tokens}


def fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def rows(label: str, results: dict[str, Result]) -> list[str]:
    out = []
    for name, r in results.items():
        failures = ", ".join(f"{k}: {v}" for k, v in r.statuses.items() if k not in (200, 503)) or "0"
        answered = len(r.latencies_ms)
        out.append(
            f"| {label} | {name} | {r.offered_rps:.1f} | {answered} | {answered / r.seconds:.2f} | "
            f"{fmt(r.percentile(50))} | {fmt(r.percentile(95))} | {fmt(r.percentile(97.5))} | "
            f"{fmt(r.percentile(99))} | {fmt(max(r.latencies_ms, default=float('nan')))} | {failures} |"
        )
        if r.shed_latencies_ms:
            sp = r.shed_percentile
            out.append(
                f"| {label} | {name} shed (503 + Retry-After) | | {len(r.shed_latencies_ms)} | "
                f"{len(r.shed_latencies_ms) / r.seconds:.2f} | {fmt(sp(50))} | {fmt(sp(95))} | {fmt(sp(97.5))} | "
                f"{fmt(sp(99))} | {fmt(max(r.shed_latencies_ms))} | |"
            )
    return out


def print_ratios(results: dict[str, dict[str, Result]]) -> None:
    """The other endpoints' p99 with login load over their p99 without it, for each way measured."""
    pairs = []
    if "baseline (other endpoints alone)" in results and "mixed (share 0.7)" in results:
        without, with_ = results["baseline (other endpoints alone)"], results["mixed (share 0.7)"]
        pairs += [(f"{name}, mixed / baseline phases", without[name], with_[name]) for name in without]
    for label, phase in results.items():
        pairs += [
            (f"{name[: -len(' (login off)')]}, {label}", result, phase[name.replace("(login off)", "(login on)")])
            for name, result in phase.items()
            if name.endswith("(login off)")
        ]
    if pairs:
        print("\n| other endpoint p99: with login load / without | without ms | with ms | ratio |")
        print("| --- | --- | --- | --- |")
    for title, without_load, with_load in pairs:
        before, after = without_load.percentile(99), with_load.percentile(99)
        print(f"| {title} | {fmt(before)} | {fmt(after)} | {after / before:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for every phase's host")
    parser.add_argument("--pin-generator", type=int, default=None, help="CPU to pin the generator to")
    parser.add_argument("--phases", default="baseline,alone-1.0,alone,mixed,interleaved")
    parser.add_argument(
        "--app-cpus",
        default=None,
        help="comma-separated CPUs for devhost and its bcrypt threads; PostgreSQL, Redis, Azurite and the "
        "generator then run on the other CPUs (the app's own machine, as deployed)",
    )
    args = parser.parse_args()
    seconds = min(args.seconds, 120)
    every_cpu = os.sched_getaffinity(0)
    app_cpus = {int(cpu) for cpu in args.app_cpus.split(",")} if args.app_cpus else every_cpu
    other_cpus = every_cpu - app_cpus or every_cpu
    cores = len(app_cpus)
    extra_env = dict(item.split("=", 1) for item in args.env)
    print(f"load average before: {os.getloadavg()}", flush=True)
    ceiling = bcrypt_ceiling_on(app_cpus, args.cost)
    login_rate = LOGIN_OFFER * ceiling["ceiling"]
    all_phases = {
        "baseline": ("baseline (other endpoints alone)", {}, ["GET users/me", "GET admin/ui-config"]),
        "alone-1.0": ("login alone, share 1.0", {"LOGIN_ADMISSION_SHARE": "1.0"}, ["login"]),
        "alone": ("login alone, default share 0.7", {}, ["login"]),
        "mixed": ("mixed (share 0.7)", {}, ["GET users/me", "GET admin/ui-config", "login"]),
        "interleaved": ("interleaved (share 0.7, login off/on)", {}, []),
    }
    os.sched_setaffinity(0, other_cpus)  # the services inherit it, and the generator keeps it
    stack = start_stack("test")
    results: dict[str, dict[str, Result]] = {}
    phase_info: dict[str, dict[str, Any]] = {}
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
            **extra_env,
        }
        subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=ROOT, env=base_env, check=True)
        fixture: dict[str, Any] | None = None
        windows: list[Window] = []
        logs = tempfile.mkdtemp(prefix="login-bench-")
        print(f"host logs in {logs}", flush=True)
        for key in args.phases.split(","):
            label, env, kinds = all_phases[key]
            app = App({**base_env, **env}, Path(logs) / f"{key}.log", app_cpus)
            try:
                fixture = fixture or seed(app.base)
                for account in fixture["accounts"][:3]:  # the first checks measure bcrypt's CPU time
                    call(app.base, "POST", "auth/login", account)
                affinity = os.sched_getaffinity(0)
                if args.pin_generator is not None:
                    os.sched_setaffinity(0, {args.pin_generator})
                cpu_app, cpu_gen, started = process_cpu_s(app.proc.pid), time.process_time(), time.monotonic()
                try:
                    if key == "interleaved":
                        windows = asyncio.run(run_interleaved(app.base, fixture, login_rate, seconds, WINDOW_S))
                        results[label] = merged_windows(windows)
                    else:
                        results[label] = asyncio.run(run_phase(app.base, fixture, kinds, login_rate, seconds))
                finally:
                    os.sched_setaffinity(0, affinity)
                elapsed = time.monotonic() - started
                phase_info[label] = {
                    "app_cpu": (process_cpu_s(app.proc.pid) - cpu_app) / elapsed,
                    "generator_cpu": (time.process_time() - cpu_gen) / elapsed,
                    "loadavg_after": os.getloadavg()[0],
                }
                print(f"{label}: done, load average {os.getloadavg()}", flush=True)
            finally:
                app.stop()
    finally:
        stack.stop()
    ceiling_after = bcrypt_ceiling_on(app_cpus, args.cost)

    print(f"\nsettings for every phase: {extra_env or 'defaults'}; generator pinned to {args.pin_generator}")
    print(f"devhost (bcrypt included) on CPUs {sorted(app_cpus)}; services and generator on {sorted(other_cpus)}")
    for name, c in (("before", ceiling), ("after", ceiling_after)):
        print(
            f"bcrypt cost {args.cost} {name}: {c['per_core']:.2f} checks/s per core x {cores} cores = "
            f"{c['ceiling']:.2f}/s ceiling ({c['parallel']:.2f}/s measured with {cores} threads in parallel)"
        )
    print(f"logins offered at {login_rate:.2f}/s ({LOGIN_OFFER:g} x the ceiling before); {seconds} s per phase\n")
    print("| phase | operation | offered/s | answered | per s | p50 ms | p95 | p97.5 | p99 | max | failures |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, phase in results.items():
        print("\n".join(rows(label, phase)))
    print_ratios(results)
    if windows:
        print_window_pairs(windows)
    print("\n| phase | devhost CPU (cores) | generator CPU (cores) | 1-min load average after |")
    print("| --- | --- | --- | --- |")
    for label, info in phase_info.items():
        print(f"| {label} | {info['app_cpu']:.2f} | {info['generator_cpu']:.2f} | {info['loadavg_after']:.2f} |")

    def brief(result: Result) -> dict[str, Any]:
        return {
            "offered_rps": result.offered_rps,
            "ok": len(result.latencies_ms),
            "shed": len(result.shed_latencies_ms),
            "failures": result.failures,
            "statuses": result.statuses,
            "p50": result.percentile(50),
            "p99": result.percentile(99),
            "shed_p50": result.shed_percentile(50),
            "shed_p99": result.shed_percentile(99),
        }

    raw = {
        "ceiling": ceiling,
        "ceiling_after": ceiling_after,
        "phases": {label: {k: brief(r) for k, r in phase.items()} for label, phase in results.items()},
        "info": phase_info,
    }
    print("\n" + json.dumps(raw, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
