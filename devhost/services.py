"""Private PostgreSQL 15, Redis and Azurite instances for `devhost.dev run` and the tests.

STDLIB ONLY: this runs before the virtualenv exists.

Every service listens on a free loopback port (never a default one: other servers may run there) and
keeps its state in the git-ignored `.state/` folder. A service is not started when its variable is set:
`DATABASE_URL`, `REDIS_URL`, `AZURE_STORAGE_CONNECTION_STRING` are then used as given.

- `run` keeps PostgreSQL's data in `.state/postgres` and Azurite's in `.state/azurite` across runs.
- tests get a fresh session folder in `.state/tmp/` (PostgreSQL with fsync off, Azurite in memory),
  removed when the stack stops. Folders left behind by a killed session are cleaned at the next start.

PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user (`runuser`). When that
user cannot reach the repository (a clone under a 0700 home), its data goes under `/tmp` instead.
Redis and Azurite are our child processes and get SIGTERM if we die (Linux `PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".state"
AZURITE_DIR = ROOT / "devhost" / "azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite"
_AZURITE_STAMP = AZURITE_DIR / "node_modules" / ".codeconnect-lock-sha256"

# Azurite's documented, public development account key (not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

PG_USER = "postgres"
START_TIMEOUT = 60.0
Kind = Literal["run", "test"]


class ServiceError(RuntimeError):
    """A service could not be found, installed, started or reached. The message says what to do."""


# ---------------------------------------------------------------------------------------------------
# helpers


_given_ports: set[int] = set()


def free_port() -> int:
    """A loopback port that is free now and not yet handed out by this process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:]) or f"(empty log {path})"


def wait_until(ready: Callable[[], bool], what: str, log: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} while starting. Log {log}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} not ready after {START_TIMEOUT:.0f} s. Log {log}:\n{log_tail(log)}")
        time.sleep(0.05)


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the thread that started it dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], log: Path | None, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child in its own session (Ctrl-C reaches only us; we stop children in order).

    Its output is appended to `log`, or shared with ours when `log` is None.
    """
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only tie it to the main thread.
    tie = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab")) if log is not None else None
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if tie else None,
        )


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def is_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if is_root() else cmd


def _chown_postgres(path: Path) -> None:
    if is_root():
        entry = pwd.getpwnam(PG_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _pg_can_write(path: Path) -> bool:
    if not is_root():
        return True
    return subprocess.run(_as_postgres(["test", "-w", str(path), "-a", "-x", str(path)])).returncode == 0


def pg_home() -> Path:
    """Where PostgreSQL folders go: `.state`, or `/tmp/codeconnect-<hash>` when `postgres` can't reach it."""
    STATE.mkdir(exist_ok=True)
    probe = STATE / f".pg-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        _chown_postgres(probe)
        if _pg_can_write(probe):
            return STATE
    finally:
        probe.rmdir()
    home = Path("/tmp") / f"codeconnect-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}"  # noqa: S108
    home.mkdir(mode=0o755, exist_ok=True)
    home.chmod(0o755)
    return home


# ---------------------------------------------------------------------------------------------------
# binaries


_apt_updated = False


def _apt_install(*alternatives: list[str], what: str) -> None:
    """Install the first installable package list with apt-get (root on Debian only), else explain."""
    global _apt_updated
    if not (is_root() and shutil.which("apt-get") and Path("/etc/debian_version").exists()):
        raise ServiceError(f"{what} is not installed. {INSTALL_HINTS[what]}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        print("==> apt-get update", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdin=subprocess.DEVNULL)
        _apt_updated = True
    for packages in alternatives:
        print(f"==> apt-get install -y {' '.join(packages)}", flush=True)
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
        if subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL).returncode == 0:
            return
    raise ServiceError(f"apt-get could not install {what}. {INSTALL_HINTS[what]}")


INSTALL_HINTS = {
    "PostgreSQL": "Install the PostgreSQL 15 server with contrib (Debian/Ubuntu: `apt-get install postgresql-15`; "
    "macOS: `brew install postgresql@15`), or set DATABASE_URL to a server where you may create databases.",
    "Redis": "Install Redis 7 (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`), "
    "or set REDIS_URL.",
    "Node.js": "Install Node.js >= 18 with npm (https://nodejs.org, or `apt-get install nodejs npm`) for Azurite, "
    "or set AZURE_STORAGE_CONNECTION_STRING.",
}


def find_pg_bindir() -> Path | None:
    """PostgreSQL server binaries: /usr/lib/postgresql/15, then `pg_config --bindir`, then other versions."""
    candidates = [Path("/usr/lib/postgresql/15/bin")]
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _int(p.parent.name), reverse=True)
    candidates += versions
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return bindir
    return None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def ensure_binaries(*, postgres: bool = True, redis: bool = True, node: bool = True) -> None:
    """Make sure the services we will start can be started; install them as root on Debian."""
    if postgres and find_pg_bindir() is None:
        _apt_install(["postgresql-15"], ["postgresql"], what="PostgreSQL")
    if postgres and is_root():
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            raise ServiceError(
                "PostgreSQL refuses to run as root and there is no `postgres` user: "
                "create it (`useradd --system postgres`) or run as an ordinary user."
            ) from None
        if not shutil.which("runuser"):
            raise ServiceError("`runuser` (util-linux) is needed to start PostgreSQL as root.")
    if redis and not shutil.which("redis-server"):
        _apt_install(["redis-server"], what="Redis")
    if node and not (shutil.which("node") and shutil.which("npm")):
        raise ServiceError(f"Node.js is not installed. {INSTALL_HINTS['Node.js']}")


def ensure_azurite() -> None:
    """`npm ci` in devhost/azurite when node_modules is missing or package-lock.json changed."""
    lock_hash = hashlib.sha256((AZURITE_DIR / "package-lock.json").read_bytes()).hexdigest()
    if AZURITE_BIN.exists() and _AZURITE_STAMP.exists() and _AZURITE_STAMP.read_text().strip() == lock_hash:
        return
    print("==> npm ci (Azurite) in devhost/azurite", flush=True)
    cmd = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    if subprocess.run(cmd, cwd=AZURITE_DIR, stdin=subprocess.DEVNULL).returncode != 0:
        raise ServiceError("`npm ci` failed in devhost/azurite (see above).")
    _AZURITE_STAMP.write_text(lock_hash + "\n")


# ---------------------------------------------------------------------------------------------------
# services


@dataclass
class Postgres:
    """A PostgreSQL cluster in `home/data`, started with pg_ctl (it daemonizes) on a loopback port."""

    bindir: Path
    home: Path
    port: int = field(default_factory=free_port)
    fast: bool = True

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = _as_postgres([str(self.bindir / tool), *args])
        return subprocess.run(cmd, capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        _chown_postgres(self.home)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        elif self._run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")  # left over by a killed run
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300"
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        args = ["start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options]
        started = self._run("pg_ctl", *args, check=False)
        if started.returncode != 0:
            output = started.stdout + started.stderr
            raise ServiceError(f"PostgreSQL did not start: {output}\nLog {self.log}:\n{log_tail(self.log)}")
        wait_until(self._accepts, "PostgreSQL", self.log)

    def _initdb(self) -> None:
        base = ["initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"]
        result = self._run(*base, "--locale=C.UTF-8", check=False)  # Unicode-aware lower()/upper()
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            result = self._run(*base, "--locale=C", check=False)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed in {self.data}:\n{result.stdout}{result.stderr}")

    def _accepts(self) -> bool:
        return self._run("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        cmd = [str(self.bindir / "psql"), "-X", "-qtA", "-v", "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql]
        result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ServiceError(f"psql failed: {sql}\n{result.stderr}")
        return result.stdout.strip()

    def ensure_database(self, name: str) -> None:
        try:
            self.psql(f'CREATE DATABASE "{name}"')
        except ServiceError as exc:
            if "already exists" not in str(exc):
                raise

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", check=False)


@dataclass
class Redis:
    """redis-server as a child process (not daemonized). `stop()` then `start()` keeps the same port."""

    home: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.home / "redis.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self) -> None:
        if self.pid is not None:
            return
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = spawn([*cmd, "--dir", str(self.home), "--logfile", ""], self.log, cwd=self.home)
        _record_pid(self.home, self.proc.pid, f"--port {self.port}")
        wait_until(self._pong, "Redis", self.log, self.proc)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)


@dataclass
class Azurite:
    """Azurite (blob, queue, table) as a child node process; in memory unless `location` is given."""

    home: Path
    location: Path | None = None
    blob_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.home / "azurite.log"

    @property
    def connection_string(self) -> str:
        def endpoint(port: int) -> str:
            return f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"

        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={endpoint(self.blob_port)};QueueEndpoint={endpoint(self.queue_port)};"
            f"TableEndpoint={endpoint(self.table_port)};"
        )

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        if not AZURITE_BIN.exists():
            raise ServiceError("Azurite is not installed: `python3 -m devhost.dev` installs it (npm ci).")
        cmd = [str(AZURITE_BIN), "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"]
        for service, port in (("blob", self.blob_port), ("queue", self.queue_port), ("table", self.table_port)):
            cmd += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        if self.location is None:
            cmd.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            cmd += ["--location", str(self.location)]
        self.proc = spawn(cmd, self.log, cwd=self.home)
        _record_pid(self.home, self.proc.pid, f"--blobPort {self.blob_port}")

    def wait_ready(self) -> None:
        ports = (self.blob_port, self.queue_port, self.table_port)
        wait_until(lambda: all(port_open(p) for p in ports), "Azurite", self.log, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)


# ---------------------------------------------------------------------------------------------------
# the stack


@dataclass
class Stack:
    """The three services' URLs; the started services themselves (None when taken from the environment)."""

    database_url: str
    redis_url: str
    storage_connection_string: str
    postgres: Postgres | None = None
    redis: Redis | None = None
    azurite: Azurite | None = None
    session_dir: Path | None = None  # removed by stop() (tests only)
    run_lock: Path | None = None  # removed by stop() (`run` only)

    def stop(self) -> None:
        """Stop what this stack started, in reverse order. Safe to call twice."""
        for service in (self.azurite, self.redis, self.postgres):
            if service is not None:
                try:
                    service.stop()
                except (OSError, subprocess.SubprocessError) as exc:
                    print(f"warning: could not stop {type(service).__name__}: {exc}", file=sys.stderr)
        if self.session_dir is not None:
            shutil.rmtree(self.session_dir, ignore_errors=True)
            self.session_dir = None
        if self.run_lock is not None:
            self.run_lock.unlink(missing_ok=True)
            self.run_lock = None

    def describe(self) -> str:
        def origin(service: object) -> str:
            return "started" if service is not None else "from the environment"

        return (
            f"  DATABASE_URL={self.database_url}  ({origin(self.postgres)})\n"
            f"  REDIS_URL={self.redis_url}  ({origin(self.redis)})\n"
            f"  Azurite blob endpoint: {_blob_endpoint(self.storage_connection_string)}  ({origin(self.azurite)})"
        )


def _blob_endpoint(connection_string: str) -> str:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return parts.get("BlobEndpoint", "(default)")


def needed(env: Mapping[str, str] | None = None) -> dict[str, bool]:
    """Which services must be started (their variable is not set): keyword arguments of ensure_binaries."""
    env = os.environ if env is None else env
    return {
        "postgres": not env.get("DATABASE_URL"),
        "redis": not env.get("REDIS_URL"),
        "node": not env.get("AZURE_STORAGE_CONNECTION_STRING"),
    }


def start_stack(kind: Kind, env: Mapping[str, str] | None = None) -> Stack:
    """Start the services `env` doesn't provide. `run`: persistent, in `.state/`; `test`: a fresh session."""
    env = os.environ if env is None else env
    need = needed(env)
    ensure_binaries(**need)
    if need["node"]:
        ensure_azurite()
    STATE.mkdir(exist_ok=True)
    if kind == "test":
        home = pg_home() / "tmp"
        home.mkdir(parents=True, exist_ok=True)
        sweep_stale_sessions(home)
        session = home / f"test-{os.getpid()}-{os.urandom(4).hex()}"  # the owner's pid: see sweep_stale_sessions
        session.mkdir(mode=0o755)
        logs = session
    else:
        session = None
        logs = STATE / "logs"
        logs.mkdir(exist_ok=True)

    stack = Stack(
        database_url=env.get("DATABASE_URL", ""),
        redis_url=env.get("REDIS_URL", ""),
        storage_connection_string=env.get("AZURE_STORAGE_CONNECTION_STRING", ""),
        session_dir=session,
        run_lock=claim_run_state() if kind == "run" else None,
    )
    atexit.register(stack.stop)
    try:
        # Azurite (about 1 s) boots while PostgreSQL initializes.
        if need["redis"]:
            stack.redis = Redis(home=logs)
            stack.redis.start()
            stack.redis_url = stack.redis.url
        if need["node"]:
            stack.azurite = Azurite(home=logs, location=STATE / "azurite" if kind == "run" else None)
            stack.azurite.launch()
            stack.storage_connection_string = stack.azurite.connection_string
        if need["postgres"]:
            bindir = find_pg_bindir()
            assert bindir is not None  # ensured above
            pg_dir = session / "pg" if session else pg_home() / "postgres"
            stack.postgres = Postgres(bindir=bindir, home=pg_dir, fast=kind == "test")
            stack.postgres.start()
            if kind == "run":
                stack.postgres.ensure_database("codeconnect")
            stack.database_url = stack.postgres.url("codeconnect" if kind == "run" else "postgres")
        if stack.azurite is not None:
            stack.azurite.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


def _record_pid(home: Path, pid: int, marker: str) -> None:
    with (home / "pids").open("a") as out:
        out.write(f"{pid}\t{marker}\n")


def sweep_stale_sessions(home: Path) -> None:
    """Stop and remove test sessions whose owning process is gone (killed without cleanup)."""
    for session in home.glob("test-*"):
        owner = _int(session.name.split("-")[1])
        if owner and _alive(owner):
            continue
        bindir = find_pg_bindir()
        data = session / "pg" / "data"
        if bindir and (data / "postmaster.pid").exists():
            cmd = _as_postgres([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"])
            subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
        _kill_recorded(session / "pids")
        shutil.rmtree(session, ignore_errors=True)


def claim_run_state() -> Path:
    """One `run` at a time owns `.state/` (its PostgreSQL data); a dead owner's leftovers are taken over."""
    owner_file = STATE / "run.pid"
    with contextlib.suppress(OSError, ValueError):
        owner = int(owner_file.read_text())
        if owner != os.getpid() and _alive(owner):
            raise ServiceError(f"another `devhost.dev run` (pid {owner}) is using {STATE}: stop it first.")
    owner_file.write_text(f"{os.getpid()}\n")
    return owner_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_recorded(pids_file: Path) -> None:
    """Kill recorded children that still run, only if their command line still carries our marker."""
    try:
        lines = pids_file.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        pid_text, _, marker = line.partition("\t")
        try:
            cmdline = Path(f"/proc/{pid_text}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker and marker in cmdline:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_text), signal.SIGTERM)
