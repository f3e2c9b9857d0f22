"""Settings: defaults, URLs, and one clear line for a bad KEEL_* value."""

from __future__ import annotations

import pytest

from src.config import ConfigError, Settings, describe_settings, load_settings


def test_embedded_defaults_point_at_the_local_cluster(monkeypatch):
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    monkeypatch.delenv("KEEL_DB_PORT", raising=False)
    settings = load_settings()
    assert settings.embedded_database
    assert settings.sqlalchemy_url() == "postgresql+asyncpg://keel@127.0.0.1:54329/keel"
    assert settings.broker_connection_url == "postgresql://keel@127.0.0.1:54329/keel"


def test_an_external_database_url_is_used_as_given(monkeypatch):
    monkeypatch.setenv("KEEL_DATABASE_URL", "postgres://u:p@db.internal:5432/prod")
    settings = load_settings()
    assert not settings.embedded_database
    assert settings.sqlalchemy_url() == "postgresql+asyncpg://u:p@db.internal:5432/prod"
    assert settings.sqlalchemy_url("other") == "postgresql+asyncpg://u:p@db.internal:5432/other"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KEEL_DB_PORT", "abc", "KEEL_DB_PORT"),
        ("KEEL_DB_PORT", "80", "KEEL_DB_PORT"),
        ("KEEL_DATABASE_URL", "mysql://x", "KEEL_DATABASE_URL"),
        ("KEEL_BROKER_URL", "kafka://x", "KEEL_BROKER_URL"),
        ("KEEL_PG_STACK", "docker", "KEEL_PG_STACK"),
        ("KEEL_LOG_LEVEL", "loud", "KEEL_LOG_LEVEL"),
        ("KEEL_CHAT_STALLED_AFTER_SECONDS", "5", "KEEL_CHAT_STALLED_AFTER_SECONDS must be at least 3 x"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert expected in message and "\n" not in message


def test_every_setting_is_described():
    described = {name for name, _, text in describe_settings() if text}
    assert described == {f"KEEL_{name.upper()}" for name in Settings.model_fields}
