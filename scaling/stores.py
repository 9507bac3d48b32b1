"""Are Kafka, Redis and ClickHouse answering? A periodic job of the supervisor.

Each store is asked the cheapest real question it answers (Redis PING, ClickHouse's HTTP
/ping, a TCP connection to a Kafka bootstrap broker) with a short timeout, and the answer is
exported as leadstream_store_up{store}: the LeadstreamStoreDown alert reads it. (Debian's
ClickHouse 18.16 has no Prometheus endpoint of its own, and Redis and Kafka need exporters.)
A Redis that answers is also asked whether it still holds the platform's state (the ls:intact
mark, projections/redis_keys.py): leadstream_redis_state_intact, read by
LeadstreamRedisStateLost (a wipe, or Redis restarted without its data).
"""
from __future__ import annotations

import logging
import socket

import httpx
import redis

from projections.redis_keys import INTACT
from streams import metrics as m
from streams.settings import Settings

log = logging.getLogger(__name__)
TIMEOUT_S = 2.0


def _redis(s: Settings) -> bool:
    r = redis.Redis.from_url(s.redis_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        up = bool(r.ping())
        m.REDIS_INTACT.labels(s.redis_url.rsplit("@", 1)[-1]).set(1 if r.exists(INTACT) else 0)
        return up
    finally:
        r.close()


def _clickhouse(s: Settings) -> bool:
    url = f"http://{s.clickhouse_host}:{s.clickhouse_http_port}/ping"
    return httpx.get(url, timeout=TIMEOUT_S).status_code == 200


def _kafka(s: Settings) -> bool:
    for server in s.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT_S):
                return True
        except OSError:
            continue
    return False


CHECKS = {"kafka": _kafka, "redis": _redis, "clickhouse": _clickhouse}


def check_stores(s: Settings) -> dict[str, bool]:
    """Ask each store once; set leadstream_store_up; return what was seen."""
    seen = {}
    for name, check in CHECKS.items():
        try:
            seen[name] = bool(check(s))
        except Exception as exc:  # unreachable, refused, timed out: down
            log.debug("%s did not answer: %s", name, exc)
            seen[name] = False
        m.STORE_UP.labels(name).set(1 if seen[name] else 0)
    return seen
