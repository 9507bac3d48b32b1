"""A tenant's daily sending volume, on a private platform: past the limit a message is
deferred to the next UTC day (sends.retry), never dropped."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import httpx
import orjson
import pytest
import yaml

from stack.isolated import IsolatedPlatform
from streams.settings import get_settings
from tests.integration.conftest import wait_for
from tests.integration.test_sending import submit

S = get_settings()
CTX: dict = {}


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import providers
    book = yaml.safe_load(S.tenants_file.read_text())
    book["tenants"]["hireflow"]["sending"]["daily_limit"] = {"email": 2}
    path = tmp_path_factory.mktemp("tenants") / "tenants.yaml"
    path.write_text(yaml.safe_dump(book))
    url, stop = providers.start(port=0)
    CTX["providers"] = url
    env = {"LEADSTREAM_TENANTS_FILE": str(path), "LEADSTREAM_PROVIDERS_URL": url}
    with IsolatedPlatform(redis_db=11, agents=("intake", "planner", "jobs", "sender_priority", "retry", "analytics"),
                          env=env) as p:
        p.poll_feeds()
        wait_for(lambda: p.redis.hlen("ls:jobs:hireflow") >= 3000, 60, what="hireflow's jobs")
        yield p
    stop()


def test_past_the_tenants_daily_limit_messages_wait_for_the_next_day(iso):
    uid = uuid.uuid4().hex[:8]
    lids = submit(iso, "hireflow", [{"email": f"w{i}.{uid}@example.com", "partner": "indeed-xml",
                                     "list": "tech-weekly", "location": {"zip": "94105", "country": "US"},
                                     "interests": {"keywords": ["engineer"]}} for i in range(4)])
    db = iso.settings.clickhouse_database
    from projections.clickhouse import connect
    ch = connect(S.clickhouse_host, S.clickhouse_port)

    def outcomes():
        rows = ch.execute(f"SELECT event_type, lead_id, visitParamExtractString(payload, 'reason'), "
                          f"visitParamExtractString(payload, 'retry_at') FROM {db}.events FINAL "
                          f"WHERE event_type IN ('send.dispatched', 'send.deferred') AND lead_id IN %(l)s",
                          {"l": tuple(lids)})
        return rows if len(rows) >= 4 else None
    rows = wait_for(outcomes, 90, what="four welcomes dispatched or deferred")
    dispatched = [r for r in rows if r[0] == "send.dispatched"]
    deferred = [r for r in rows if r[0] == "send.deferred"]
    assert len(dispatched) == 2 and len(deferred) == 2
    assert {r[1] for r in dispatched} | {r[1] for r in deferred} == set(lids)  # each lead once, none dropped
    next_day = datetime.fromtimestamp((int(time.time()) // 86_400 + 1) * 86_400, tz=timezone.utc)
    assert all(r[2] == "tenant_daily_limit" and datetime.fromisoformat(r[3]) == next_day for r in deferred), deferred
    sent = httpx.get(f"{CTX['providers']}/sent/sendgrid").json() + httpx.get(f"{CTX['providers']}/sent/ses").json()
    assert len(sent) == 2
    assert int(iso.redis.get(f"ls:daycap:hireflow:email:{time.strftime('%Y-%m-%d', time.gmtime())}")) == 2
    assert orjson.loads(iso.redis.get(f"ls:lead:hireflow:{lids[0]}"))["status"] == "accepted"
