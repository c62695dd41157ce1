from __future__ import annotations

import pytest

from shared.config import ConfigError, load_settings

VALID = {
    "DATABASE_URL": "postgresql://app:secret@db.example:5432/codeconnect",
    "REDIS_URL": "redis://cache.example:6379/0",
    "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


def settings_with(**changes: str | None) -> dict[str, str]:
    env = dict(VALID)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_defaults_are_sized_for_serverless_fan_out() -> None:
    settings = load_settings(VALID)
    assert settings.db_pool_max_size == 10
    assert settings.db_pool_min_size == 1
    assert settings.db_connect_timeout_s == 2.0
    assert settings.statement_cache_size == 100
    assert settings.bcrypt_threads >= 1


def test_the_original_pool_figures_are_one_setting_away() -> None:
    settings = load_settings(
        settings_with(DB_POOL_MAX="200", DB_POOL_MIN="10", DB_POOL_IDLE_TIMEOUT_SECONDS="30", BCRYPT_THREADS="32")
    )
    assert (settings.db_pool_max_size, settings.db_pool_min_size, settings.db_pool_idle_timeout_s) == (200, 10, 30.0)
    assert settings.bcrypt_threads == 32


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL"])
def test_a_missing_required_setting_is_named(variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable}: is required"):
        load_settings(settings_with(**{variable: None}))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://db.example/x"),
        ("REDIS_URL", "http://cache.example:6379"),
        ("REDIS_URL", "redis://"),
        ("DB_POOL_MAX", "many"),
        ("DB_POOL_MAX", "0"),
        ("RAZORPAY_ADMINUPI", "not-a-vpa"),
        ("AZURE_STORAGE_CONNECTION_STRING", "garbage"),
        ("RAZORPAY_API_BASE_URL", "127.0.0.1:8401"),
        ("STRIPE_API_BASE_URL", "ftp://stripe.example"),
        ("WEBHOOK_CLAIM_LEASE_SECONDS", "0"),
        ("WEBHOOK_DUPLICATE_WAIT_SECONDS", "-1"),
    ],
)
def test_a_malformed_setting_is_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(settings_with(**{variable: value}))


def test_tls_redis_urls_are_accepted() -> None:
    assert load_settings(settings_with(REDIS_URL="rediss://:pw@cache.example:6380/0")).redis_url.startswith("rediss://")


def test_provider_base_urls_and_webhook_secrets_are_read() -> None:
    settings = load_settings(
        settings_with(
            RAZORPAY_API_BASE_URL="http://127.0.0.1:8401",
            STRIPE_API_BASE_URL="http://127.0.0.1:8402",
            RAZORPAY_WEBHOOK_SECRET="rzp-hook",
            STRIPE_WEBHOOK_SECRET="whsec_x",
        )
    )
    assert (settings.razorpay_api_base_url, settings.stripe_api_base_url) == (
        "http://127.0.0.1:8401",
        "http://127.0.0.1:8402",
    )
    assert (settings.razorpay_webhook_secret, settings.stripe_webhook_secret) == ("rzp-hook", "whsec_x")
    assert load_settings(settings_with()).stripe_api_base_url is None


def test_storage_is_required_in_one_form_or_the_other() -> None:
    with pytest.raises(ConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        load_settings(settings_with(AZURE_STORAGE_CONNECTION_STRING=None))
    account = load_settings(
        settings_with(
            AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_ACCOUNT_URL="https://acct.blob.core.windows.net"
        )
    )
    assert account.storage_account_url == "https://acct.blob.core.windows.net"


def test_pgbouncer_mode_turns_off_the_statement_cache_unless_configured() -> None:
    assert load_settings(settings_with(DB_PGBOUNCER="true")).statement_cache_size == 0
    assert load_settings(settings_with(DB_PGBOUNCER="true", DB_STATEMENT_CACHE_SIZE="200")).statement_cache_size == 200


def test_pool_minimum_may_not_exceed_maximum() -> None:
    with pytest.raises(ConfigError, match="DB_POOL_MIN must not exceed DB_POOL_MAX"):
        load_settings(settings_with(DB_POOL_MAX="2", DB_POOL_MIN="5"))


def test_empty_values_count_as_unset() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL: is required"):
        load_settings(settings_with(DATABASE_URL=""))
