"""Analytics answers from the real ClickHouse equal the counts of the distinct raw events.

The known history of analytics_dataset.py (copies, a re-sent batch, a revised click, a late
open) goes through event_row + EventsWriter into a fresh database; every answer of the
rollups must equal the oracle's count of the distinct events, for every granularity,
grouping, filter and scope tried here.
"""
from __future__ import annotations

import os

import pytest

from domain.analytics import (METRICS, PUBLIC, AnalyticsScope, InvalidRequest, OutOfScope, brand_scope, parse_request,
                              partner_scope)
from projections.analytics import Analytics, ClientPool
from projections.clickhouse import connect
from streams.settings import get_settings
from tests.projections import analytics_dataset as data

DB = f"an_test_analytics_{os.getpid()}"
ADMIN = AnalyticsScope(None, None, None)
SINCE, UNTIL = "2025-11-24", "2025-11-26"
COUNTS = [n for n in PUBLIC if not METRICS[n].derived]


def having(*dims) -> list[str]:
    return [n for n in COUNTS if set(dims) <= METRICS[n].dimensions]


@pytest.fixture(scope="module")
def ch():
    s = get_settings()
    client = connect(s.clickhouse_host, s.clickhouse_port)
    client.written = data.load(client, DB)
    yield client
    client.execute(f"DROP DATABASE IF EXISTS {DB}")
    client.disconnect()


@pytest.fixture(scope="module")
def engine(ch):
    s = get_settings()
    return Analytics(ClientPool(lambda: connect(s.clickhouse_host, s.clickhouse_port)), DB, data.SHARES)


def _values(answer_base, metrics):
    return {k: {m: METRICS[m].value(v) for m in metrics} for k, v in answer_base.items()}


def check(engine, scope=ADMIN, series=True, **kw):
    """The engine's summed base metrics equal the oracle's, and every metric's value too."""
    req = parse_request(kw.pop("metrics", COUNTS), kw.pop("since", SINCE), kw.pop("until", UNTIL),
                        kw.pop("granularity", "day"), kw.pop("group_by", ()), kw.pop("filters", {}))
    got = {k: {m: v for m, v in b.items() if v} for k, b in engine._base(req, scope, series).items()}
    got = {k: b for k, b in got.items() if b}
    want = {k: {m: v for m, v in b.items() if v} for k, b in data.expected(req, scope, series).items()}
    want = {k: b for k, b in want.items() if b}
    assert got == want
    assert _values(got, req.metrics) == _values(want, req.metrics)
    return req, got


def test_each_event_is_written_once(ch):
    assert ch.written == len(data.distinct())
    assert ch.execute(f"SELECT count(), uniqExact(event_key) FROM {DB}.event_keys")[0] == (ch.written, ch.written)


def test_the_dataset_exercises_what_it_claims():
    names = {n for n, _ in data.distinct()}
    assert {"lead.rejected", "lead.resubmitted", "send.deferred", "send.bounced", "engagement.replied"} <= names
    keys = [(ev["event_id"], ev.get("revision") or 0) for b in data.batches() for _, ev in b]
    assert len(keys) > len(set(keys)) + 300  # copies
    assert any(ev.get("revision") for _, ev in data.distinct())  # a click revised to a machine
    assert any(ev.get("via") == "sendgrid" for _, ev in data.distinct())  # an open reported late


@pytest.mark.parametrize("granularity", ["hour", "day", "week"])
def test_every_count_in_every_granularity_equals_the_distinct_raw_events(engine, granularity):
    req, got = check(engine, granularity=granularity)
    assert sum(b.get("leads_submitted", 0) for b in got.values()) > 100
    assert sum(b.get("clicks_human_unique", 0) for b in got.values()) > 10


def test_a_breakdown_sums_the_whole_range(engine):
    check(engine, series=False)
    check(engine, series=False, since="2025-11-23", until="2025-11-27")


@pytest.mark.parametrize("group_by, metrics", [
    (["tenant"], COUNTS),
    (["partner"], COUNTS),
    (["tenant", "partner", "list"], having("list")),
    (["channel"], having("channel")),
    (["provider"], having("provider")),
    (["template"], having("template")),
    (["creative", "job_source"], ["clicks_human", "clicks_machine", "revenue_cents", "machine_click_cents"]),
    (["kind"], having("kind")),
    (["country", "state"], ["leads_submitted", "leads_accepted"]),
    (["keyword"], ["leads_submitted", "leads_accepted"]),
    (["category", "partner"], ["leads_submitted", "leads_accepted"]),
    (["variant"], ["leads_accepted", "sends_dispatched", "opens_human_unique"]),
])
def test_groupings(engine, group_by, metrics):
    check(engine, group_by=group_by, metrics=metrics)
    check(engine, group_by=group_by, metrics=metrics, series=False)


@pytest.mark.parametrize("filters, metrics", [
    ({"tenant": ["hireflow"]}, COUNTS),
    ({"partner": ["ziprecruiter"], "list": ["daily-jobs", "daily"]}, having("list")),
    ({"channel": ["sms"]}, having("channel")),
    ({"keyword": ["nurse", "icu"]}, ["leads_accepted"]),
    ({"country": ["CA"]}, ["leads_submitted", "acceptance_rate"]),
    ({"template": ["tA"]}, ["sends_dispatched", "opens_human_unique", "clicks_human_unique", "ctr_human"]),
])
def test_filters(engine, filters, metrics):
    check(engine, filters=filters, metrics=metrics, group_by=["tenant"])


def test_hour_granularity_reads_the_hourly_rollups(engine):
    req, _ = check(engine, granularity="hour", group_by=["partner", "list"],
                   metrics=["leads_accepted", "sends_dispatched", "opens_human_unique", "revenue_cents"])
    assert {q for q in engine.last_timings} == {"lead_hourly", "send_hourly", "engagement_hourly"}


def test_derived_metrics_and_profit_shares(engine):
    req = parse_request(["revenue_cents", "brand_share_cents", "platform_share_cents", "ctr_human",
                         "click_to_open_human", "ecpm_cents"], SINCE, UNTIL, group_by=["tenant"])
    out = engine.breakdown(req, ADMIN)
    rows = {r["group"]["tenant"]: r["values"] for r in out["rows"]}
    for tenant, share in data.SHARES.items():
        v = rows[tenant]
        assert v["brand_share_cents"] + v["platform_share_cents"] == v["revenue_cents"] > 0
        assert abs(v["brand_share_cents"] - v["revenue_cents"] * share) <= 0.5
    assert rows["ghost"]["brand_share_cents"] is None  # no share in the tenant file: unknown, not guessed
    assert out["totals"]["brand_share_cents"] is None
    assert 0 < rows["jobsnearby"]["ctr_human"] < 1 and 0 < rows["jobsnearby"]["click_to_open_human"] <= 1


def test_a_series_is_zero_filled_and_totals_are_computed_from_sums(engine):
    req = parse_request(["leads_accepted", "ctr_human"], "2025-11-20", "2025-11-30", "day", ["tenant"])
    out = engine.series(req, ADMIN)
    assert len(out["buckets"]) == 11 and out["buckets"][0] == "2025-11-20T00:00:00Z"
    accepted, ctr = out["series"]
    for g in accepted["groups"]:
        assert len(g["points"]) == 11 and g["points"][0]["value"] == 0
        assert g["total"] == sum(p["value"] for p in g["points"])
    assert all(p["value"] is None for g in ctr["groups"] for p in g["points"][:3])  # nothing dispatched: no rate
    totals = [g["total"] for g in accepted["groups"]]
    assert totals == sorted(totals, reverse=True)


def test_weeks_start_on_monday(engine):
    req = parse_request(["leads_accepted"], "2025-11-20", "2025-12-02", "week")
    out = engine.series(req, ADMIN)
    assert out["buckets"] == ["2025-11-17T00:00:00Z", "2025-11-24T00:00:00Z", "2025-12-01T00:00:00Z"]


# --- scope ---------------------------------------------------------------------------------

PARTNER = partner_scope("jobsnearby", "ziprecruiter")


def test_a_partner_sees_only_its_own_leads_rows(engine):
    metrics = [n for n in COUNTS if n in PARTNER.metrics]
    req, got = check(engine, PARTNER, metrics=metrics, group_by=["tenant", "partner"])
    assert {k[1:] for k in got} == {("jobsnearby", "ziprecruiter")}
    # hireflow's partner of the same name is another brand's: none of its rows
    check(engine, PARTNER, metrics=[n for n in metrics if "list" in METRICS[n].dimensions], group_by=["list"])


def test_a_brand_sees_only_its_own_rows(engine):
    req, got = check(engine, brand_scope("hireflow"), group_by=["tenant", "partner"])
    assert {k[1] for k in got} == {"hireflow"}


@pytest.mark.parametrize("filters", [{"partner": ["careers"]}, {"partner": ["ziprecruiter", "indeed-xml"]},
                                     {"tenant": ["hireflow"]}, {"tenant": ["jobsnearby", "ghost"]}])
def test_a_partner_cannot_filter_its_way_out(engine, filters):
    req = parse_request(["leads_accepted"], SINCE, UNTIL, filters=filters)
    with pytest.raises(OutOfScope):
        engine.series(req, PARTNER)


def test_a_partner_may_not_ask_for_metrics_it_is_not_given(engine):
    req = parse_request(["revenue_cents"], SINCE, UNTIL)
    with pytest.raises(OutOfScope, match="metrics"):
        engine.breakdown(req, PARTNER)
    narrow = AnalyticsScope(frozenset({"jobsnearby"}), "ziprecruiter", frozenset({"leads_accepted"}))
    with pytest.raises(OutOfScope):
        engine.breakdown(parse_request(["leads_submitted"], SINCE, UNTIL), narrow)


def test_a_partner_grouping_by_partner_sees_itself_only(engine):
    req = parse_request(["leads_accepted", "opens_human_unique"], SINCE, UNTIL, group_by=["partner"])
    out = engine.breakdown(req, PARTNER)
    assert [r["group"] for r in out["rows"]] == [{"partner": "ziprecruiter"}]


def test_crafted_values_stay_values(engine):
    evil = "x' OR 1=1 OR partner != '"
    req = parse_request(["leads_accepted"], SINCE, UNTIL, filters={"list": [evil]}, group_by=["partner"])
    assert engine.breakdown(req, brand_scope("jobsnearby"))["rows"] == []
    with pytest.raises(OutOfScope):
        engine.breakdown(parse_request(["leads_accepted"], SINCE, UNTIL, filters={"partner": [evil]}), PARTNER)
    with pytest.raises(InvalidRequest):
        parse_request(["leads_accepted"], SINCE, UNTIL, group_by=["partner) OR (1"])
    with pytest.raises(InvalidRequest):
        parse_request(["leads_accepted"], "2025-11-24' OR '1", UNTIL)  # dates are parsed, never pasted
