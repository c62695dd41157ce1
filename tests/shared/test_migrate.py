"""The migration runner against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from shared.db.migrate import MigrationError, discover, migrate


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql, encoding="utf-8")


async def test_the_real_migrations_apply_once_and_then_are_a_no_op(empty_database_url: str) -> None:
    versions = [m.version for m in discover()]
    assert versions and versions[0] == "0001_foundation"
    assert await migrate(empty_database_url) == versions
    assert await migrate(empty_database_url) == []
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ui_config") >= 1
    finally:
        await conn.close()


async def test_concurrent_runners_apply_each_migration_exactly_once(empty_database_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_one.sql", "CREATE TABLE one (id int); SELECT pg_sleep(0.2);")
    write(tmp_path, "0002_two.sql", "CREATE TABLE two (id int);")
    results = await asyncio.gather(*(migrate(empty_database_url, tmp_path) for _ in range(3)))
    assert sorted(results, key=len) == [[], [], ["0001_one", "0002_two"]]


async def test_an_edited_applied_migration_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_one.sql", "CREATE TABLE one (id int);")
    await migrate(empty_database_url, tmp_path)
    write(tmp_path, "0001_one.sql", "CREATE TABLE one (id int, extra text);")
    with pytest.raises(MigrationError, match=r"0001_one\.sql changed after it was applied"):
        await migrate(empty_database_url, tmp_path)


async def test_an_applied_migration_whose_file_is_gone_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_one.sql", "CREATE TABLE one (id int);")
    await migrate(empty_database_url, tmp_path)
    (tmp_path / "0001_one.sql").unlink()
    with pytest.raises(MigrationError, match="its file is missing"):
        await migrate(empty_database_url, tmp_path)


async def test_a_failing_migration_rolls_back_and_is_not_recorded(empty_database_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_bad.sql", "CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate(empty_database_url, tmp_path)
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_UPPER.sql"])
def test_misnamed_files_are_refused(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_snake_case"):
        discover(tmp_path)


def test_a_number_used_twice_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "SELECT 1;")
    write(tmp_path, "0001_b.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="used twice"):
        discover(tmp_path)


def test_the_command_line_applies_migrations(empty_database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": empty_database_url, "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "shared.db.migrate"]
    root = Path(__file__).resolve().parents[2]
    first = subprocess.run(run, cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    assert "applied migration 0001_foundation" in first.stderr
    second = subprocess.run(run, cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "schema is up to date" in second.stderr
    missing = subprocess.run(run, cwd=root, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
