"""Who is calling: the authenticated user and their role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["student", "mentor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    session_id: uuid.UUID  # the refresh-token family the access token was issued with
