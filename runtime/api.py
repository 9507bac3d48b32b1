"""The API process: its dependencies built from the settings, then the app (api.ingress)."""
from __future__ import annotations

from fastapi import FastAPI

from api.ingress import build_app
from runtime.deps import build
from streams.gc_tuning import tune_for_streaming
from streams.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The uvicorn factory for tests and benchmarks (no logging set-up)."""
    deps = build(settings or get_settings())
    deps.wait_for_config = False  # the API answers 503 while the configuration is not loaded
    deps.config  # start reading the configuration now, in the background
    app = build_app(deps)
    tune_for_streaming()
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory of ./dev: logging and Sentry for this process, then the app."""
    from streams.logs import configure_logging
    from streams.sentry import init_sentry
    s = get_settings()
    configure_logging("api", s.log_format)
    init_sentry(s.sentry_dsn, s.sentry_environment, "api")
    return create_app(s)
