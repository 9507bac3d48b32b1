"""Each process's /metrics carries real values; every Redis key belongs to a bounded family."""
from __future__ import annotations

import re

import httpx

from projections.redis_keys import FAMILIES, family_of
from tests.integration.conftest import auth, read_model, wait_decisions, wait_for


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample (labels matched as a subset), or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _traffic(api, keys, uid, ch, settings) -> list[str]:
    leads = [{"email": f"m{i}.{uid}@example.com", "partner": "p", "list": "nurses"} for i in range(30)]
    r = api.post("/v1/leads/batch", json={"leads": leads}, headers=auth(keys["hireflow"]))
    assert r.status_code == 202, r.text
    causes = [x["event_id"] for x in r.json()["leads"]]
    wait_decisions(ch, settings.clickhouse_database, causes)
    return [x["lead_id"] for x in r.json()["leads"]]


def test_every_process_serves_metrics_with_real_values(api, keys, uid, ch, settings, supervisor):
    _traffic(api, keys, uid, ch, settings)
    text = api.get("/metrics").text
    assert sample(text, "leadstream_api_leads_total", tenant="hireflow") >= 30
    assert sample(text, "leadstream_api_requests_total", route="/v1/leads/batch", status="202") >= 1

    sup = httpx.get(f"http://127.0.0.1:{settings.supervisor_port}/metrics").text
    status = supervisor.status()["agents"]
    for agent, a in status.items():
        assert sample(sup, "leadstream_workers_running", agent=agent) == a["running"] >= 1
        assert sample(sup, "leadstream_agent_lag", agent=agent) is not None
    assert sample(sup, "leadstream_consumer_lag", group="leadstream-intake", topic="leads.submitted",
                  partition="0") is not None
    assert sample(sup, "leadstream_job_last_success_timestamp_seconds", task="scaling_tick") > 0
    assert sample(sup, "leadstream_redis_keys", family="lead") > 0
    assert sample(sup, "leadstream_redis_memory_bytes") > 0

    def worker_metrics(agent: str) -> str:
        """Every ready worker's /metrics of the agent, one after the other (the agent may run
        several workers, and only some of them got partitions with this test's leads)."""
        ports = [w["metrics_port"] for w in supervisor.workers(agent) if w["ready"]]
        return "\n".join(httpx.get(f"http://127.0.0.1:{p}/metrics").text for p in ports)

    intake = wait_for(lambda: (t := worker_metrics("intake")) and
                      sum(_all(t, "leadstream_events_processed_total")) > 0 and t, 30, what="intake metrics")
    assert sum(_all(intake, "leadstream_batch_size_count")) > 0
    assert sum(_all(intake, "leadstream_end_to_end_seconds_count")) > 0
    analytics = wait_for(lambda: (t := worker_metrics("analytics")) and
                         sum(_all(t, "leadstream_clickhouse_rows_total")) > 0 and t, 30, what="analytics metrics")
    assert sum(_all(analytics, "leadstream_clickhouse_insert_seconds_count")) > 0


def _all(text: str, name: str) -> list[float]:
    return [float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
            if ln.startswith(name + "{") or ln.startswith(name + " ")]


def test_every_redis_key_belongs_to_a_bounded_family(api, keys, uid, ch, settings, rds, book):
    lids = _traffic(api, keys, uid, ch, settings)
    read_model(api, keys["hireflow"], lids[0])
    r = api.post(f"/v1/leads/{lids[0]}/unsubscribe", headers=auth(keys["hireflow"]))
    assert r.status_code == 202
    wait_for(lambda: rds.exists("ls:optout:hireflow"), 30, what="the opt-out set")
    counts = {f.name: 0 for f in FAMILIES}
    strays = []
    for key in rds.scan_iter(count=10000):
        key = key.decode()
        fam = family_of(key)
        if fam is None:
            strays.append(key)
            continue
        counts[fam.name] += 1
        if fam.bound == "ttl":
            ttl = rds.ttl(key)
            if ttl == -2:
                continue  # expired between the scan and now: it had a TTL
            # -1 is "no TTL"; 0 is a key in its last second
            assert 0 <= ttl <= fam.max_ttl_s, f"{key} of a TTL family has TTL {ttl} (at most {fam.max_ttl_s})"
    assert not strays[:20], f"keys of no declared family: {strays[:20]}"
    # the bounds: one set per tenant, one blocklist, at most one read model per lead id
    assert counts["optout"] <= len(book.tenants)
    assert counts["blocklist"] == 1
    lead_ids = ch.execute(f"SELECT uniqExact(lead_id) FROM {settings.clickhouse_database}.events "
                          f"WHERE event_type IN ('lead.accepted', 'lead.rejected')")[0][0]
    assert 0 < counts["lead"] <= lead_ids
