"""The API connects its Kafka producer while it starts, before it listens (real Kafka)."""
from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from api.ingress import _connect_producer, build_app
from runtime.deps import build
from streams.settings import get_settings


def test_the_producer_is_made_and_connected_before_the_first_request():
    deps = build(get_settings())
    deps.wait_for_config = False
    app = build_app(deps)
    assert deps._producer is None
    with TestClient(app) as client:  # runs the lifespan's start-up, as uvicorn does before binding
        assert deps._producer is not None
        assert client.get("/healthz").status_code in (200, 503)


def test_kafka_not_answering_at_start_up_is_logged_and_the_api_starts_anyway(caplog):
    s = get_settings().model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    deps = build(s)
    with caplog.at_level(logging.WARNING, logger="leadstream.api"):
        _connect_producer(deps, timeout=1.0)
    assert deps._producer is not None
    assert "Kafka did not answer within 1s at start-up" in caplog.text
    deps._producer.close(0.5)
