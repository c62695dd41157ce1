"""Create an admin account: the only way to make one (the public API registers students and mentors).

    python -m shared.accounts.create_admin --email ops@example.com --name "Ops"   # password from stdin
    ADMIN_PASSWORD=... python -m shared.accounts.create_admin --email ops@example.com --name "Ops"

The password is read from the ADMIN_PASSWORD environment variable or stdin, never from argv (which
other users of the machine can see in the process list). Needs the app's settings (DATABASE_URL, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from pydantic import TypeAdapter, ValidationError

from shared import resources
from shared.accounts import service
from shared.accounts.models import Email, Name, NewPassword
from shared.config import get_settings
from shared.errors import DomainError


def _read_password() -> str:
    if password := os.environ.get("ADMIN_PASSWORD"):
        return password
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\n")


async def _create(email: str, name: str, password: str) -> str:
    ctx = service.AccountsContext(
        database=await resources.get_database(),
        cache=await resources.get_cache(),
        hasher=await resources.get_password_hasher(),
        limiter=await resources.get_rate_limiter(),
        settings=get_settings(),
    )
    try:
        user = await service.create_admin(ctx, email=email, name=name, password=password)
    finally:
        await resources.close_resources()
    return str(user.id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", default="Administrator")
    args = parser.parse_args(argv)
    try:
        email = TypeAdapter(Email).validate_python(args.email)
        name = TypeAdapter(Name).validate_python(args.name)
        password = TypeAdapter(NewPassword).validate_python(_read_password())
    except ValidationError as exc:
        sys.stderr.write(f"error: {'; '.join(e['msg'] for e in exc.errors())}\n")
        return 2
    try:
        user_id = asyncio.run(_create(email, name, password))
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        return 1
    sys.stdout.write(f"created admin {email} ({user_id})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
