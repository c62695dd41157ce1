"""Application settings: one validated, immutable object read from the environment.

Variable names follow the system this app replaces (DATABASE_URL, REDIS_URL, ...). Settings are read
on first use, never at import, so a bad value fails the first invocation with a message that names
the variable instead of stopping the worker from indexing any function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message names the variable."""


def _url_with_scheme(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("must name a host")
        return value

    return AfterValidator(check)


def _vpa(value: str | None) -> str | None:
    if value is not None and (value.count("@") != 1 or not all(value.split("@"))):
        raise ValueError("must be a UPI id like name@bank")
    return value


def _storage_connection_string(value: str | None) -> str | None:
    if value is None or value == "UseDevelopmentStorage=true":
        return value
    pairs = dict(part.split("=", 1) for part in value.strip(";").split(";") if "=" in part)
    if "AccountName" not in pairs and "BlobEndpoint" not in pairs:
        raise ValueError("must be an Azure Storage connection string (AccountName=...;AccountKey=...)")
    return value


class Settings(BaseModel):
    """Every setting the app reads. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    database_url: Annotated[str, _url_with_scheme("postgres", "postgresql")] = Field(alias="DATABASE_URL")
    redis_url: Annotated[str, _url_with_scheme("redis", "rediss", "unix")] = Field(alias="REDIS_URL")
    storage_connection_string: Annotated[str | None, AfterValidator(_storage_connection_string)] = Field(
        default=None, alias="AZURE_STORAGE_CONNECTION_STRING"
    )
    # Managed-identity alternative to the connection string (Azure): https://<account>.blob.core.windows.net
    storage_account_url: Annotated[str | None, _url_with_scheme("https", "http")] = Field(
        default=None, alias="AZURE_STORAGE_ACCOUNT_URL"
    )

    # Pool sizes are per worker process. The original Node app used 200/10/30 s/2 s; on serverless
    # fan-out every instance multiplies max_size, so ours stays small (performance.md §4.3).
    db_pool_max_size: int = Field(default=10, ge=1, le=500, alias="DB_POOL_MAX")
    db_pool_min_size: int = Field(default=1, ge=0, le=500, alias="DB_POOL_MIN")
    db_pool_idle_timeout_s: float = Field(default=30.0, ge=0, alias="DB_POOL_IDLE_TIMEOUT_SECONDS")
    db_connect_timeout_s: float = Field(default=2.0, gt=0, alias="DB_CONNECT_TIMEOUT_SECONDS")
    db_acquire_timeout_s: float = Field(default=2.0, gt=0, alias="DB_ACQUIRE_TIMEOUT_SECONDS")
    db_command_timeout_s: float = Field(default=10.0, gt=0, alias="DB_COMMAND_TIMEOUT_SECONDS")
    # Behind PgBouncer in transaction mode, prepared statements need PgBouncer >= 1.21 with
    # max_prepared_statements > 0; otherwise set DB_STATEMENT_CACHE_SIZE=0 (costs ~45% throughput).
    db_pgbouncer: bool = Field(default=False, alias="DB_PGBOUNCER")
    db_statement_cache_size: int | None = Field(default=None, ge=0, alias="DB_STATEMENT_CACHE_SIZE")

    redis_max_connections: int = Field(default=64, ge=1, alias="REDIS_MAX_CONNECTIONS")
    redis_pool_timeout_s: float = Field(default=1.0, gt=0, alias="REDIS_POOL_TIMEOUT_SECONDS")
    redis_connect_timeout_s: float = Field(default=0.25, gt=0, alias="REDIS_CONNECT_TIMEOUT_SECONDS")
    redis_socket_timeout_s: float = Field(default=0.5, gt=0, alias="REDIS_SOCKET_TIMEOUT_SECONDS")
    cache_breaker_cooldown_s: float = Field(default=2.0, gt=0, alias="CACHE_BREAKER_COOLDOWN_SECONDS")
    cache_local_ttl_s: float = Field(default=5.0, ge=0, alias="CACHE_LOCAL_TTL_SECONDS")

    # bcrypt runs off the event loop in a bounded executor; the original raised UV_THREADPOOL_SIZE
    # to 32 for the same reason. More threads than cores only queue inside the executor instead.
    bcrypt_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=64, alias="BCRYPT_THREADS")
    bcrypt_cost: int = Field(default=12, ge=4, le=16, alias="BCRYPT_COST")
    # Hashes allowed to wait for a thread; past it, login answers 503 + Retry-After at once.
    bcrypt_queue_size: int = Field(default=8, ge=0, le=1000, alias="BCRYPT_QUEUE_SIZE")
    # A hash still waiting for a thread after this long is not started but answered with 503.
    bcrypt_max_wait_s: float = Field(default=2.0, gt=0, le=30, alias="BCRYPT_MAX_WAIT_SECONDS")
    # Logins may use at most this share of the measured bcrypt capacity, so the rest of the API
    # keeps CPU while logins pour in; the excess is shed with 503 + Retry-After.
    login_admission_share: float = Field(default=0.7, gt=0, le=1, alias="LOGIN_ADMISSION_SHARE")
    # The Python worker processes per instance (an app setting, so every worker reads the same):
    # they share the instance's cores, so each admits logins for its part of them.
    worker_process_count: int = Field(default=1, ge=1, le=64, alias="FUNCTIONS_WORKER_PROCESS_COUNT")
    # nice value of the bcrypt threads (Linux): the event loop, PostgreSQL and Redis run first, and
    # bcrypt gets the CPU nobody else wants. 0 keeps bcrypt at normal priority.
    bcrypt_nice: int = Field(default=19, ge=0, le=19, alias="BCRYPT_NICE")

    # Required to issue or check tokens, validated on first use so health and public reads work
    # without it. Never defaulted: a default secret in code would sign tokens for anyone.
    jwt_signing_key: SecretStr | None = Field(default=None, min_length=32, alias="JWT_SIGNING_KEY")
    access_token_ttl_s: int = Field(default=900, ge=30, le=86_400, alias="ACCESS_TOKEN_TTL_SECONDS")
    refresh_token_ttl_s: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400, alias="REFRESH_TOKEN_TTL_SECONDS")

    # Fixed-window counters in Redis (an in-process window while Redis is unreachable).
    rate_limit_window_s: int = Field(default=900, ge=1, le=86_400, alias="RATE_LIMIT_WINDOW_SECONDS")
    login_limit_per_email: int = Field(default=10, ge=1, alias="LOGIN_LIMIT_PER_EMAIL")
    login_limit_per_ip: int = Field(default=100, ge=1, alias="LOGIN_LIMIT_PER_IP")
    register_limit_per_email: int = Field(default=5, ge=1, alias="REGISTER_LIMIT_PER_EMAIL")
    register_limit_per_ip: int = Field(default=20, ge=1, alias="REGISTER_LIMIT_PER_IP")

    # Bookings: the platform's terms, copied onto each booking when it is made (shared/bookings/policy.py),
    # so changing them never alters an existing booking.
    platform_commission_bps: int = Field(default=1500, ge=0, le=10_000, alias="PLATFORM_COMMISSION_BPS")
    booking_full_refund_cutoff_hours: int = Field(default=24, ge=0, le=720, alias="BOOKING_FULL_REFUND_CUTOFF_HOURS")
    booking_late_cancel_refund_percent: int = Field(default=0, ge=0, le=100, alias="BOOKING_LATE_CANCEL_REFUND_PERCENT")
    booking_reschedule_cutoff_hours: int = Field(default=24, ge=0, le=720, alias="BOOKING_RESCHEDULE_CUTOFF_HOURS")
    booking_hold_minutes: int = Field(default=15, ge=1, le=1440, alias="BOOKING_HOLD_MINUTES")
    # How long an Idempotency-Key's stored response is replayed before housekeeping forgets it.
    idempotency_key_retention_hours: int = Field(default=24, ge=1, le=24 * 30, alias="IDEMPOTENCY_KEY_RETENTION_HOURS")

    razorpay_admin_upi: Annotated[str | None, AfterValidator(_vpa)] = Field(default=None, alias="RAZORPAY_ADMINUPI")
    razorpay_key_id: str | None = Field(default=None, alias="TESTING_RAZORPAY_KEY_ID")
    razorpay_key_secret: str | None = Field(default=None, alias="TESTING_RAZORPAY_KEY_SECRET")
    stripe_secret_key: str | None = Field(default=None, alias="TESTING_STRIPE_SECRET_KEY")
    stripe_public_key: str | None = Field(default=None, alias="TESTING_VITE_STRIPE_PUBLIC_KEY")
    # Webhook endpoint secrets (not the API keys): X-Razorpay-Signature and Stripe-Signature are HMACs with them.
    razorpay_webhook_secret: str | None = Field(default=None, alias="RAZORPAY_WEBHOOK_SECRET")
    stripe_webhook_secret: str | None = Field(default=None, alias="STRIPE_WEBHOOK_SECRET")
    # The SDKs' base URLs, unset in Azure (the SDK defaults); local runs and tests point them at
    # devhost/fakes. Without /v1: both SDKs add it.
    razorpay_api_base_url: Annotated[str | None, _url_with_scheme("https", "http")] = Field(
        default=None, alias="RAZORPAY_API_BASE_URL"
    )
    stripe_api_base_url: Annotated[str | None, _url_with_scheme("https", "http")] = Field(
        default=None, alias="STRIPE_API_BASE_URL"
    )

    # Stripe-Signature timestamps older than this are refused (Stripe's own default is 300 s).
    stripe_webhook_tolerance_s: int = Field(default=300, ge=1, le=3600, alias="STRIPE_WEBHOOK_TOLERANCE_SECONDS")
    # One provider call; past it the call counts as failed and the orchestration retries it.
    payment_provider_timeout_s: float = Field(default=10.0, gt=0, le=60, alias="PAYMENT_PROVIDER_TIMEOUT_SECONDS")
    # How long starting a checkout waits for the provider order before answering 202 (poll later).
    payment_checkout_wait_s: float = Field(default=5.0, ge=0, le=30, alias="PAYMENT_CHECKOUT_WAIT_SECONDS")
    # Reconciliation asks the provider about local payments still created/pending after this long.
    payment_reconcile_min_age_s: int = Field(default=120, ge=0, alias="PAYMENT_RECONCILE_MIN_AGE_SECONDS")
    # A webhook delivery claims its event for this long; a claim whose delivery died runs out after it.
    webhook_claim_lease_s: int = Field(default=120, ge=1, le=3600, alias="WEBHOOK_CLAIM_LEASE_SECONDS")
    # How long a duplicate delivery waits (polling, no connection held) for the delivery processing
    # its event to finish; then it is answered 503 + Retry-After and the provider retries it later.
    webhook_duplicate_wait_s: float = Field(default=3.0, ge=0, le=60, alias="WEBHOOK_DUPLICATE_WAIT_SECONDS")

    durable_task_hub: str = Field(default="codeconnect", alias="DURABLE_TASK_HUB")
    app_insights_connection_string: str | None = Field(default=None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING")

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        if self.storage_connection_string is None and self.storage_account_url is None:
            raise ValueError("AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_URL) is required")
        return self

    def signing_key(self) -> str:
        """The JWT signing key; ConfigError naming the variable when it is not set."""
        if self.jwt_signing_key is None:
            raise ConfigError("invalid settings: JWT_SIGNING_KEY: is required to issue or check access tokens")
        return self.jwt_signing_key.get_secret_value()

    @property
    def statement_cache_size(self) -> int:
        """asyncpg's statement cache: configured, else 0 behind PgBouncer, else asyncpg's default."""
        if self.db_statement_cache_size is not None:
            return self.db_statement_cache_size
        return 0 if self.db_pgbouncer else 100


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate settings from `environ` (default: the process environment); raise ConfigError on error."""
    source: Mapping[str, Any] = os.environ if environ is None else environ
    values = {k: v for k, v in source.items() if v != ""}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        variable = ".".join(str(part) for part in error["loc"]) or "settings"
        reason = "is required" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}: {reason}")
    return "invalid settings: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once on first use."""
    return load_settings()
