"""The mentors tests use tests/conftest.py's `app_host`, `api` and `make_user`.

`Client`, `Reply` and `User` stay importable from here for tests written against this module.
"""

from __future__ import annotations

from api_support import Client, Reply, User

__all__ = ["Client", "Reply", "User"]
