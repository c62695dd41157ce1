"""The developer entry point. STDLIB ONLY: it bootstraps everything else. Run from the repository root:

    python3 -m devhost.dev run             # services + migrations + the local Functions host on $PORT (7071)
    python3 -m devhost.dev test [ARGS...]  # ruff, ruff format --check, mypy, then pytest ARGS

Both first make sure of:
- `.venv` (created with this python3) with requirements-dev.txt and the worker's indexing packages,
  reinstalled only when the requirements files change (a stamp in .venv);
- PostgreSQL, Redis and Node.js (installed with apt-get when root on Debian, see devhost.services);
- Azurite in devhost/azurite (`npm ci` when node_modules is missing or the lock file changed).

`run` starts the services itself (state in `.state/`) and a fake Razorpay and Stripe (devhost/fakes)
for each provider that neither the environment nor local.settings.json configures; `test` leaves
that to the pytest plugin (devhost.pytest_plugin) so that plain `pytest` works too. DATABASE_URL,
REDIS_URL and AZURE_STORAGE_CONNECTION_STRING replace the corresponding service when set.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from types import FrameType

from devhost import services
from devhost.fakes.launch import ProviderFakes, start_fakes
from devhost.hostconfig import read_local_settings

ROOT = services.ROOT
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".codeconnect-requirements.sha256"
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")
# The worker's indexing (a test-time lint) declares Python >= 3.13 but runs on 3.11: install without deps.
WORKER_PACKAGES = ("azure-functions-runtime==1.3.0", "azurefunctions-extensions-base==1.2.0")
HOST_STOP_TIMEOUT = 15.0


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def requirements_hash() -> str:
    digest = hashlib.sha256()
    for name in REQUIREMENTS:
        digest.update((ROOT / name).read_bytes())
    digest.update(" ".join(WORKER_PACKAGES).encode())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv with this interpreter and install the pinned requirements when they changed."""
    wanted = requirements_hash()
    if VENV_PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not VENV_PYTHON.exists():
        step(f"creating .venv with {sys.executable}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    step("pip install -r requirements-dev.txt")
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt")], check=True, stdin=subprocess.DEVNULL)
    step(f"pip install --no-deps --ignore-requires-python {' '.join(WORKER_PACKAGES)}")
    subprocess.run([*pip, "--no-deps", "--ignore-requires-python", *WORKER_PACKAGES], check=True)
    STAMP.write_text(wanted + "\n")


def bootstrap() -> None:
    ensure_venv()
    need = services.needed()
    services.ensure_binaries(**need)
    if need["node"]:
        services.ensure_azurite()


# ---------------------------------------------------------------------------------------------------
# test


def test(pytest_args: list[str]) -> int:
    checks = {
        "ruff check": ["-m", "ruff", "check", "."],
        "ruff format --check": ["-m", "ruff", "format", "--check", "."],
        "mypy": ["-m", "mypy"],
        "pytest": ["-m", "pytest", *pytest_args],
    }
    failed = []
    for name, args in checks.items():
        step(name)
        code = subprocess.run([str(VENV_PYTHON), *args], cwd=ROOT, stdin=subprocess.DEVNULL).returncode
        if code != 0:  # pytest's 5 ("no tests collected") is a failure too
            failed.append(f"{name} (exit {code})")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    step("all checks passed")
    return 0


# ---------------------------------------------------------------------------------------------------
# run


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def local_jwt_signing_key() -> str:
    """A signing key for local runs, made once and kept in .state/ so tokens survive restarts."""
    path = ROOT / ".state" / "jwt-signing-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def run() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that `finally` stops the services
    port = os.environ.get("PORT", "7071")
    step("starting services")
    stack = services.start_stack("run")
    fakes = ProviderFakes()
    try:
        print(stack.describe(), flush=True)
        step("starting fake payment providers where none is configured")
        local_values = read_local_settings(ROOT).values
        fakes = start_fakes(VENV_PYTHON, port, {**local_values, **os.environ}, services.STATE / "logs")
        print(fakes.describe(), flush=True)
        env = {
            "DURABLE_TASK_HUB": "codeconnectdev",  # host.json names the hub through this setting
            "JWT_SIGNING_KEY": local_jwt_signing_key(),
            **os.environ,
            **fakes.env,  # only for providers that neither the environment nor local settings configure
            "DATABASE_URL": stack.database_url,
            "REDIS_URL": stack.redis_url,
            "AZURE_STORAGE_CONNECTION_STRING": stack.storage_connection_string,
            "AzureWebJobsStorage": stack.storage_connection_string,
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "PYTHONUNBUFFERED": "1",
        }
        migrate_env = dict(env)
        if stack.postgres is not None:  # migrate the database we started, whatever the shell says
            migrate_env.pop("MIGRATIONS_DATABASE_URL", None)
        step("applying migrations")
        subprocess.run([str(VENV_PYTHON), "-m", "shared.db.migrate"], cwd=ROOT, env=migrate_env, check=True)
        step(f"local Functions host on http://127.0.0.1:{port}/api/ (Ctrl-C stops the host and the services)")
        return serve([str(VENV_PYTHON), "-m", "devhost", "--port", port], env)
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        return 1
    finally:
        step("stopping services")
        fakes.stop()
        stack.stop()


def serve(cmd: list[str], env: dict[str, str]) -> int:
    """Run the host until it exits; SIGINT/SIGTERM are passed on to it, then it is killed after a grace time."""
    host = services.spawn(cmd, None, cwd=ROOT, env=env)
    stopping_since: float | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping_since
        stopping_since = stopping_since or time.monotonic()
        if host.poll() is None:
            host.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = host.wait(timeout=0.5)
                return 128 - code if code < 0 else code  # killed by signal N: 128 + N, like a shell
            except subprocess.TimeoutExpired:
                if stopping_since is not None and time.monotonic() - stopping_since > HOST_STOP_TIMEOUT:
                    print("host did not stop in time: killing it", file=sys.stderr)
                    host.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------


USAGE = """usage: python3 -m devhost.dev run        start the services and the local Functions host on $PORT (7071)
       python3 -m devhost.dev test [ARGS]  ruff, ruff format --check, mypy, then pytest ARGS
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("run", "test") or (argv[0] == "run" and len(argv) > 1):
        print(USAGE, file=sys.stderr)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - the bootstrap may be started by an older python3
        print("error: Python >= 3.11 is required (the app targets 3.11).", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    try:
        bootstrap()
        return run() if argv[0] == "run" else test(argv[1:])
    except services.ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
