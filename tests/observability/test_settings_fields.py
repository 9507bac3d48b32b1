"""The observability settings read from the environment."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import Settings

NAMES = ("SENTRY_DSN", "LEADSTREAM_SENTRY_DSN", "LEADSTREAM_SENTRY_ENVIRONMENT",
         "LEADSTREAM_ALERT_WEBHOOK_URL", "LEADSTREAM_LOG_FORMAT")


@pytest.fixture
def env(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env):
    s = Settings()
    assert (s.sentry_dsn, s.sentry_environment, s.alert_webhook_url, s.log_format) == ("", "local", "", "json")


def test_sentry_dsn_from_either_name_prefixed_first(env):
    env.setenv("SENTRY_DSN", "http://k@127.0.0.1:1/1")
    assert Settings().sentry_dsn == "http://k@127.0.0.1:1/1"
    env.setenv("LEADSTREAM_SENTRY_DSN", "http://k@127.0.0.1:2/2")
    assert Settings().sentry_dsn == "http://k@127.0.0.1:2/2"


def test_other_fields_and_log_format_checked(env):
    env.setenv("LEADSTREAM_SENTRY_ENVIRONMENT", "production")
    env.setenv("LEADSTREAM_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    env.setenv("LEADSTREAM_LOG_FORMAT", "text")
    s = Settings()
    assert (s.sentry_environment, s.alert_webhook_url, s.log_format) == ("production", "http://127.0.0.1:9/hook", "text")
    env.setenv("LEADSTREAM_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="'json' or 'text'"):
        Settings()
