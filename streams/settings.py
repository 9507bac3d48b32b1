"""The one place that reads the environment. Everything else receives a Settings."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.tenants import TenantBook, parse_tenant_book

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Endpoints and knobs, from LEADSTREAM_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="LEADSTREAM_", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:19092"
    redis_url: str = "redis://127.0.0.1:16379/0"
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 19000
    clickhouse_http_port: int = 18123
    clickhouse_database: str = "leadstream"
    api_host: str = "127.0.0.1"
    api_port: int = 18080
    tenants_file: Path = ROOT / "tenants" / "demo.yaml"
    # Topic names get this prefix, so tests and benchmarks can run beside the live stack.
    topic_prefix: str = ""
    partitions: int = 8
    batch_size: int = 2000
    batch_seconds: float = 0.2
    max_batch_leads: int = 1000
    max_body_bytes: int = 2_000_000
    produce_timeout_s: float = 5.0
    # scaling: the supervisor's status/metrics port, its per-agent file, how often it measures
    supervisor_host: str = "127.0.0.1"
    supervisor_port: int = 18090
    scaling_file: Path = ROOT / "scaling" / "agents.yaml"
    scaling_interval_s: float = 2.0
    # local: worker processes on this machine; kubernetes: set Deployments' replicas (no KEDA)
    scaling_backend: Literal["local", "kubernetes"] = "local"
    # this process's /metrics (0: none); the supervisor gives worker slot i port base + i
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    worker_metrics_base_port: int = 18100
    # Sentry's own tooling sets SENTRY_DSN, so accept it beside the prefixed name.
    sentry_dsn: str = Field("", validation_alias=AliasChoices("LEADSTREAM_SENTRY_DSN", "SENTRY_DSN"))
    sentry_environment: str = "local"
    alert_webhook_url: str = ""
    log_format: Literal["json", "text"] = "json"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, built once per process."""
    return Settings()


def load_tenants(path: Path) -> TenantBook:
    """Read and check a YAML tenant file."""
    import yaml
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ValueError(f"cannot read tenant file {path}: {exc}; set LEADSTREAM_TENANTS_FILE") from exc
    return parse_tenant_book(data, path)
