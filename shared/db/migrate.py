"""Forward-only schema migrations: numbered SQL files applied once each, in order.

`python -m shared.db.migrate` applies what is pending to DATABASE_URL (or MIGRATIONS_DATABASE_URL,
which must reach PostgreSQL directly, never through PgBouncer: session advisory locks and
multi-statement DDL do not survive transaction pooling). Concurrent runners serialise on an
advisory lock; each file runs in its own transaction; an applied file whose content changed is
refused, because the database no longer matches the code that describes it.

It runs from the dev command, the deploy pipeline and the test fixtures, never at function start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same for every runner of this app.
_LOCK_KEY = 0x63_6F_64_65_63_6F_6E  # "codecon"

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a misnamed or duplicate-numbered file is an error."""
    migrations: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_case.sql")
        number = match.group(1)
        if any(version.startswith(number) for version in migrations):
            raise MigrationError(f"{path.name}: migration number {number} is used twice")
        version = path.stem
        migrations[version] = Migration(version, path, path.read_text(encoding="utf-8"))
    return list(migrations.values())


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    migrations = discover(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_CREATE_TABLE)
            applied = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
            _check_applied(migrations, applied)
            done = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                async with conn.transaction():
                    # No arguments: asyncpg then uses the simple protocol, so a file may hold many statements.
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                        migration.version,
                        migration.checksum,
                    )
                logger.info("applied migration %s", migration.version)
                done.append(migration.version)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


def _check_applied(migrations: list[Migration], applied: dict[str, str]) -> None:
    known = {m.version: m for m in migrations}
    for version, checksum in applied.items():
        migration = known.get(version)
        if migration is None:
            raise MigrationError(f"{version} is applied to the database but its file is missing")
        if migration.checksum != checksum:
            raise MigrationError(f"{migration.path.name} changed after it was applied; add a new migration instead")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dsn = os.environ.get("MIGRATIONS_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not dsn:
        logger.error("set DATABASE_URL (or MIGRATIONS_DATABASE_URL) to the database to migrate")
        return 2
    try:
        applied = asyncio.run(migrate(dsn))
    except MigrationError as exc:
        logger.error("migration refused: %s", exc)
        return 1
    if applied:
        logger.info("%d migration(s) applied", len(applied))
    else:
        logger.info("schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
