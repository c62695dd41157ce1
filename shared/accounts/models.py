"""The accounts API's request and response bodies."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

import idna
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from shared.auth.passwords import MAX_PASSWORD_BYTES
from shared.auth.principal import Role
from shared.http.cursor import CursorParam
from shared.models import Text

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INVISIBLE = frozenset({"Cc", "Cf"})  # control and format characters (zero-width space, joiners, bidi marks)


def normalise_email(value: str) -> str:
    """The stored form of an email address, the same for every way of writing it.

    Trimmed, lower-cased and NFC-normalised (a composed and a decomposed "é" are one address), with
    the domain IDNA-encoded (UTS #46), so "bücher.de" and "xn--bcher-kva.de" are one domain. Control
    and format characters are refused rather than dropped: an invisible character must never make a
    second account that looks like the first. The reserved `.invalid` TLD (RFC 2606) is refused:
    it can receive no mail, and deleted accounts are anonymised under it.
    """
    if len(value) > 320:
        raise PydanticCustomError("email_invalid", "not an email address")
    email = unicodedata.normalize("NFC", value.strip().lower())
    if any(unicodedata.category(char) in _INVISIBLE for char in email):
        raise PydanticCustomError("email_invalid", "an email address may not contain invisible characters")
    local, at, domain = email.rpartition("@")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise PydanticCustomError("email_invalid", "not an email address") from None
    email = f"{local}{at}{ascii_domain}"
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise PydanticCustomError("email_invalid", "not an email address")
    if ascii_domain.rstrip(".").rsplit(".", 1)[-1] == "invalid":
        raise PydanticCustomError("email_invalid", "the .invalid domain cannot receive email")
    return email


def _within_bcrypt_limit(value: str) -> str:
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise PydanticCustomError("password_too_long", "passwords are limited to 72 bytes (bcrypt's limit)")
    return value


Email = Annotated[Text, AfterValidator(normalise_email)]
# Any password a user may type in (login checks whatever was set); bcrypt's limit still applies.
AnyPassword = Annotated[Text, Field(min_length=1), AfterValidator(_within_bcrypt_limit)]
NewPassword = Annotated[Text, Field(min_length=8), AfterValidator(_within_bcrypt_limit)]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OpaqueToken = Annotated[Text, Field(min_length=1, max_length=200)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Input):
    email: Email
    password: NewPassword
    name: Name
    role: Literal["student", "mentor"]  # admins are created by `python -m shared.accounts.create_admin`


class Credentials(_Input):
    email: Email
    password: AnyPassword


class RefreshRequest(_Input):
    refresh_token: OpaqueToken


class UserUpdate(_Input):
    name: Name | None = None
    email: Email | None = None
    password: NewPassword | None = None
    current_password: AnyPassword | None = None

    @model_validator(mode="after")
    def _check(self) -> UserUpdate:
        if self.name is None and self.email is None and self.password is None:
            raise PydanticCustomError("nothing_to_update", "send name, email or password")
        if (self.password is not None or self.email is not None) and self.current_password is None:
            raise PydanticCustomError("current_password_required", "changing email or password needs current_password")
        return self


class AdminUserUpdate(_Input):
    status: Literal["active", "deactivated"] | None = None
    role: Role | None = None

    @model_validator(mode="after")
    def _check(self) -> AdminUserUpdate:
        if self.status is None and self.role is None:
            raise PydanticCustomError("nothing_to_update", "send status or role")
        return self


class UsersQuery(_Input):
    role: Role | None = None
    status: Literal["active", "deactivated", "deleted"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: CursorParam | None = None


class TokensPublic(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme name)
    expires_in: int


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    status: str
    created_at: datetime
    updated_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    next_cursor: str | None
