"""Pooled connections are handed back without asyncpg's reset query (shared/db/pool.py), so no code
that uses the app's pool may leave session state on one: a session setting, an advisory lock held
past its transaction, a LISTEN, a cursor WITH HOLD, a prepared statement or a temporary table would
reach the next request that gets the connection.

The scan below reads every string the app's code holds (SQL lives in those) and every asyncpg call
that changes the session; the database test shows what the pool does and does not clean.
"""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.db.database import Database

ROOT = Path(__file__).resolve().parents[2]
# Code that never runs on the app's pool: the migrator opens a connection of its own (and holds a
# session advisory lock on it, which its connection's close releases).
OWN_CONNECTION = {"shared/db/migrate.py"}

# SQL is written in upper case in this code base; a statement that starts like this changes the session.
_SESSION_STATEMENT = re.compile(
    r"^\s*(?:SET\s+(?!LOCAL\b)|RESET\b|LISTEN\b|DECLARE\b|PREPARE\b|LOAD\b|DISCARD\b|CREATE\s+(?:TEMP|TEMPORARY)\b)"
)
# Anywhere in a statement, in any case: functions and clauses whose effect outlives the transaction.
_SESSION_ANYWHERE = re.compile(
    r"\bset_config\s*\(|\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(|\bWITH\s+HOLD\b|\bpg_advisory_unlock\w*\s*\(",
    re.IGNORECASE,
)
# asyncpg calls that register state on the server session (LISTEN) or configure the connection.
_SESSION_CALLS = {"add_listener", "add_log_listener", "set_type_codec", "set_builtin_type_codec", "reload_schema_state"}


def session_state_in(sql: str) -> bool:
    """Whether `sql` (one string, possibly several statements) leaves state on the session."""
    statements = re.split(r";", re.sub(r"--[^\n]*", "", sql))
    return any(_SESSION_STATEMENT.match(s) for s in statements) or bool(_SESSION_ANYWHERE.search(sql))


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # an f-string: its text with each {…} as a placeholder
            text = "".join(v.value if isinstance(v, ast.Constant) else "?" for v in node.values)
            yield node.lineno, text
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _session_calls(node: ast.AST, function: str = "<module>") -> Iterator[tuple[str, str]]:
    """(enclosing function, method) of each asyncpg call under `node` that changes the session."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        function = node.name
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SESSION_CALLS:
        yield function, node.func.attr
    for child in ast.iter_child_nodes(node):
        yield from _session_calls(child, function)


def findings(path: Path, relative: str) -> list[str]:
    tree = ast.parse(path.read_text(), filename=relative)
    found = [f"{relative}:{line}: {text.strip()[:80]!r}" for line, text in _strings(tree) if session_state_in(text)]
    found += [f"{relative}: {function} calls .{method}(...)" for function, method in _session_calls(tree)]
    return found


def app_sources() -> Iterator[tuple[Path, str]]:
    for path in sorted([*(ROOT / "shared").rglob("*.py"), ROOT / "function_app.py"]):
        relative = path.relative_to(ROOT).as_posix()
        if relative not in OWN_CONNECTION:
            yield path, relative


def test_no_code_on_the_pool_leaves_session_state() -> None:
    found = [finding for path, relative in app_sources() for finding in findings(path, relative)]
    # The pool's own per-connection setup (json codecs, before first use) is the one allowed call.
    assert found == ["shared/db/pool.py: _init_connection calls .set_type_codec(...)"], (
        "session state on pooled connections: reset them in shared/db/pool.py or keep it in a transaction"
    )


def test_the_migrator_runs_on_a_connection_of_its_own() -> None:
    source = (ROOT / "shared/db/migrate.py").read_text()
    assert "asyncpg.connect(" in source
    assert "resources" not in source and "Database" not in source


@pytest.mark.parametrize(
    "sql",
    [
        "SET statement_timeout = 0",
        "SELECT 1;\n  SET search_path TO other",
        "SET SESSION AUTHORIZATION someone",
        "RESET ALL",
        "LISTEN changes",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "PREPARE q AS SELECT 1",
        "CREATE TEMP TABLE t (x int)",
        "select set_config('app.user', $1, false)",
        "SELECT pg_advisory_lock($1)",
        "SELECT pg_try_advisory_lock_shared(1, 2)",
    ],
)
def test_the_scan_sees_each_kind_of_session_state(sql: str) -> None:
    assert session_state_in(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE payments\nSET status = $2 WHERE id = $1",
        "SET LOCAL lock_timeout = '1s'",
        "SELECT pg_advisory_xact_lock($1)",
        "-- SET x = 1 in a comment\nSELECT 1",
        "Set by the caller; the settings are read once.",
    ],
)
def test_the_scan_lets_transaction_scoped_and_ordinary_sql_pass(sql: str) -> None:
    assert not session_state_in(sql)


@pytest.fixture
async def one_connection(app_settings: dict[str, str]) -> AsyncIterator[Database]:
    database = await Database.connect(load_settings({**app_settings, "DB_POOL_MAX": "1", "DB_POOL_MIN": "1"}))
    yield database
    await database.close()


async def test_the_pool_keeps_session_state_but_rolls_back_an_open_transaction(one_connection: Database) -> None:
    async with one_connection.connection() as conn:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("SET application_name = 'left-by-the-last-request'")
        transaction = conn.transaction()
        await transaction.start()  # never committed nor rolled back by its user
        await conn.execute("SELECT pg_advisory_xact_lock(4242)")
    async with one_connection.connection() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == backend  # the same connection
        # No reset query ran: what the scan above forbids would still be here...
        assert await conn.fetchval("SHOW application_name") == "left-by-the-last-request"
        # ...but asyncpg still rolled the transaction back, and its lock with it.
        assert not conn.is_in_transaction()
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        assert await conn.fetchval(held) == 0
        await conn.execute("RESET application_name")
