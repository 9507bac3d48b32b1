"""The supervisor's store checks (scaling/stores.py) against the real stores, and against
addresses where nothing listens: leadstream_store_up follows what each store answered."""
from __future__ import annotations

from prometheus_client import REGISTRY

from scaling.stores import check_stores
from streams.settings import get_settings


def _gauge(store: str) -> float | None:
    return REGISTRY.get_sample_value("leadstream_store_up", {"store": store})


def test_every_running_store_is_up():
    assert check_stores(get_settings()) == {"kafka": True, "redis": True, "clickhouse": True}
    assert [_gauge(s) for s in ("kafka", "redis", "clickhouse")] == [1.0, 1.0, 1.0]


def test_a_store_that_does_not_answer_is_down_and_the_others_stay_up():
    s = get_settings()
    nowhere = s.model_copy(update={"clickhouse_http_port": 1, "redis_url": "redis://127.0.0.1:1/0"})
    assert check_stores(nowhere) == {"kafka": True, "redis": False, "clickhouse": False}
    assert [_gauge(x) for x in ("kafka", "redis", "clickhouse")] == [1.0, 0.0, 0.0]
    no_kafka = s.model_copy(update={"kafka_bootstrap": "127.0.0.1:1,127.0.0.1:2"})
    assert check_stores(no_kafka)["kafka"] is False and _gauge("kafka") == 0.0


def test_a_redis_that_answers_without_its_state_mark_reads_as_lost_and_marked_as_intact():
    """Redis answers but holds no ls:intact mark (wiped): leadstream_redis_state_intact is 0,
    which LeadstreamRedisStateLost reads; with the mark it is 1. A spare Redis database plays the
    wiped one."""
    import redis

    from projections.redis_keys import INTACT
    s = get_settings()
    url = s.redis_url.rsplit("/", 1)[0] + "/14"
    r = redis.Redis.from_url(url)
    r.flushdb()
    try:
        assert check_stores(s.model_copy(update={"redis_url": url}))["redis"] is True
        assert REGISTRY.get_sample_value("leadstream_redis_state_intact", {"redis": url}) == 0.0
        r.set(INTACT, "test")
        check_stores(s.model_copy(update={"redis_url": url}))
        assert REGISTRY.get_sample_value("leadstream_redis_state_intact", {"redis": url}) == 1.0
    finally:
        r.flushdb()
