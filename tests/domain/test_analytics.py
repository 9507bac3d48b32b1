"""The analytics API's decisions (pure): the catalogue, request validation with field paths,
scope checks, and the SQL built from whitelisted names with every caller's value a parameter."""
from datetime import date, datetime

import pytest

from domain.analytics import (ADMIN, DIMENSIONS, METRICS, PARTNER_DEFAULTS, PUBLIC, ROLLUPS, AnalyticsScope,
                              InvalidRequest, OutOfScope, authorize, brand_scope, buckets, catalogue, parse_request,
                              partner_scope, plan)
from domain.analytics_catalogue import base_inputs, partner_metrics

PARTNER = partner_scope("acme", "feed")


def problems(**kw) -> list[dict]:
    args = dict(metrics=["leads_accepted"], since="2026-01-01", until="2026-01-31") | kw
    with pytest.raises(InvalidRequest) as exc:
        parse_request(**args)
    assert exc.value.status == 422 and exc.value.problems
    return exc.value.problems


def test_the_catalogue_has_dozens_of_described_metrics_with_dimensions():
    assert len(PUBLIC) >= 60
    for name in PUBLIC:
        m = METRICS[name]
        assert m.description and m.unit in ("count", "cents", "ratio") and {"tenant", "partner"} <= m.dimensions
    for family in ("leads_rejected_blocklisted", "sends_skipped_daily_cap", "sends_deferred_rate_limited",
                   "bounces_hard", "opens_machine_unique", "clicks_human_unique", "ctr_human", "click_to_open_human",
                   "unsubscribes_sms_stop", "sms_replies_stop", "revenue_cents", "brand_share_cents",
                   "platform_share_cents", "ecpm_cents", "leads_duplicate"):
        assert family in PUBLIC
    assert not any(n.startswith("_") for n in PUBLIC)
    assert "variant" in DIMENSIONS and "variant" in METRICS["leads_accepted"].dimensions


def test_a_derived_metric_has_the_dimensions_all_its_inputs_have():
    assert METRICS["ctr_human"].dimensions == METRICS["clicks_human_unique"].dimensions & METRICS["sends_dispatched"].dimensions
    assert "creative" not in METRICS["ctr_human"].dimensions
    assert base_inputs(["ctr_human", "sends_dispatched", "platform_share_cents"]) == \
        ["clicks_human_unique", "sends_dispatched", "revenue_cents", "_brand_bp_cents", "_unshared_cents"]


def test_derived_values_from_summed_counts():
    assert METRICS["ctr_human"].value({"clicks_human_unique": 3, "sends_dispatched": 12}) == 0.25
    assert METRICS["ctr_human"].value({"clicks_human_unique": 3}) is None  # nothing dispatched
    assert METRICS["ecpm_cents"].value({"revenue_cents": 250, "sends_dispatched": 1000}) == 250
    base = {"revenue_cents": 1001, "_brand_bp_cents": 1001 * 5000, "_unshared_cents": 0}
    assert METRICS["brand_share_cents"].value(base) == 500  # 500.5 rounds half to even
    assert METRICS["platform_share_cents"].value(base) == 501
    assert METRICS["brand_share_cents"].value(base | {"_unshared_cents": 7}) is None


def test_partner_metrics_come_from_the_tenant_file_or_the_defaults():
    assert partner_metrics() == PARTNER_DEFAULTS and "revenue_cents" not in PARTNER_DEFAULTS
    assert "leads_accepted" in PARTNER_DEFAULTS and "ctr_human" in PARTNER_DEFAULTS
    assert partner_metrics(["leads_accepted"]) == {"leads_accepted"}
    with pytest.raises(ValueError, match="not metrics: nope"):
        partner_metrics(["leads_accepted", "nope"])


def test_unknown_names_are_named_with_their_field_path():
    got = problems(metrics=["leads_accepted", "sends_dispatched", "foo"])
    assert got == [{"field": "metrics[2]", "problem": "'foo' is not a metric; see GET /v1/analytics/metrics"}]
    assert problems(group_by=["partner", "colour"])[0]["field"] == "group_by[1]"
    assert problems(filters={"colour": ["red"]})[0]["field"] == "colour"
    assert problems(metrics=[])[0]["field"] == "metrics"
    assert problems(metrics=["_brand_bp_cents"])[0]["field"] == "metrics[0]"  # inputs are not offered


def test_every_problem_is_reported_at_once():
    got = problems(metrics=["foo", "bar"], since="yesterday", granularity="minute", limit=0)
    assert [p["field"] for p in got] == ["metrics[0]", "metrics[1]", "since", "granularity", "limit"]


@pytest.mark.parametrize("kw, field", [
    ({"since": "2026-02-01"}, "until"),
    ({"since": "2024-01-01"}, "until"),
    ({"granularity": "hour", "since": "2025-12-01"}, "granularity"),
    ({"group_by": ["partner", "partner"]}, "group_by[1]"),
    ({"group_by": ["tenant", "partner", "list", "channel"]}, "group_by"),
    ({"filters": {"list": ["x" * 201]}}, "list"),
    ({"sort": "-nope"}, "sort"),
    ({"limit": 10_001}, "limit"),
])
def test_ranges_and_shapes(kw, field):
    assert problems(**kw)[0]["field"] == field


def test_a_metric_cannot_be_grouped_or_filtered_by_what_it_does_not_have():
    [p] = problems(metrics=["leads_accepted", "sends_dispatched"], group_by=["template"])
    assert p["field"] == "metrics[0]" and "cannot be grouped by template" in p["problem"]
    [p] = problems(metrics=["unsubscribes"], filters={"list": ["daily"]})
    assert "cannot be filtered by list" in p["problem"]


def test_a_combination_no_rollup_holds_is_refused_with_the_sets_that_work():
    [p] = problems(group_by=["keyword", "country"])
    assert p["field"] == "group_by" and "keyword" in p["problem"] and "country, list" in p["problem"]
    [p] = problems(group_by=["country"], granularity="hour", until="2026-01-02")
    assert "hour granularity" in p["problem"]


def test_values_are_split_on_commas_and_repeats_dropped():
    req = parse_request("leads_accepted,sends_dispatched,leads_accepted", "2026-01-01", "2026-01-01",
                        group_by="tenant,partner", filters={"list": ["a,b", "a"]})
    assert req.metrics == ("leads_accepted", "sends_dispatched") and req.group_by == ("tenant", "partner")
    assert req.filter_map == {"list": ("a", "b")}


def request(**kw):
    args = dict(metrics=["leads_accepted"], since="2026-01-01", until="2026-01-31") | kw
    return parse_request(**args)


@pytest.mark.parametrize("scope, kw, field", [
    (PARTNER, {"filters": {"partner": ["other"]}}, "partner"),
    (PARTNER, {"filters": {"partner": ["feed", "other"]}}, "partner"),
    (PARTNER, {"filters": {"tenant": ["other"]}}, "tenant"),
    (PARTNER, {"metrics": ["revenue_cents"]}, "metrics[0]"),
    (PARTNER, {"metrics": ["leads_accepted", "sends_skipped"]}, "metrics[1]"),
    (brand_scope("acme"), {"filters": {"tenant": ["acme", "other"]}}, "tenant"),
    (AnalyticsScope(frozenset(), None, None), {}, "tenant"),
])
def test_out_of_scope_is_refused(scope, kw, field):
    with pytest.raises(OutOfScope) as exc:
        authorize(request(**kw), scope)
    assert exc.value.status == 403 and exc.value.problems[0]["field"] == field


def test_within_scope_is_allowed():
    authorize(request(filters={"partner": ["feed"], "tenant": ["acme"]}, group_by=["partner"]), PARTNER)
    authorize(request(metrics=["revenue_cents", "brand_share_cents"], group_by=["tenant"]), brand_scope("acme"))
    authorize(request(), ADMIN)


def test_the_scope_is_in_the_sql_of_every_query():
    req = request(metrics=["leads_accepted", "sends_dispatched", "clicks_human_unique", "ctr_human"],
                  group_by=["list"], filters={"channel": ["email"]})
    queries = plan(req, PARTNER, "leadstream")
    assert {q.family for q in queries} == {"lead", "send", "engagement"}
    for q in queries:
        assert "tenant IN %(scope_tenants)s" in q.sql and "partner = %(scope_partner)s" in q.sql
        assert q.params["scope_tenants"] == ("acme",) and q.params["scope_partner"] == "feed"
        assert "channel IN %(f_channel)s" in q.sql and q.params["f_channel"] == ("email",)
    admin = plan(req, ADMIN, "leadstream")
    assert all("scope_" not in q.sql for q in admin)


def test_callers_values_never_reach_the_sql_text():
    evil = "x'); DROP TABLE events; --"
    req = request(filters={"list": [evil], "partner": ["feed"]}, group_by=["partner"])
    for q in plan(req, PARTNER, "leadstream"):
        assert evil not in q.sql and q.params["f_list"] == (evil,)
    with pytest.raises(ValueError):
        plan(req, PARTNER, "leadstream; DROP")


def test_the_smallest_rollup_that_can_answer_is_chosen():
    table = lambda **kw: {q.family: q.table for q in plan(request(**kw), ADMIN, "db")}  # noqa: E731
    assert table() == {"lead": "lead_daily"}
    assert table(granularity="hour", until="2026-01-02") == {"lead": "lead_hourly"}
    assert table(group_by=["country"]) == {"lead": "lead_daily_detail"}
    assert table(group_by=["keyword"]) == {"lead": "lead_daily_keyword"}
    assert table(metrics=["sends_dispatched"], group_by=["template"]) == {"send": "send_daily_detail"}
    assert table(metrics=["clicks_human"], filters={"job_source": ["f"]}) == {"engagement": "engagement_daily_detail"}
    assert {r.table for r in ROLLUPS} >= {"lead_daily", "send_hourly", "engagement_daily_detail"}


def test_time_ranges_and_buckets():
    [q] = plan(request(granularity="hour", since="2026-03-01", until="2026-03-02"), ADMIN, "db")
    assert q.params["start"] == datetime(2026, 3, 1) and q.params["end"] == datetime(2026, 3, 3)
    assert "t >= %(start)s AND t < %(end)s" in q.sql
    [q] = plan(request(granularity="week"), ADMIN, "db")
    assert "toMonday(day) AS bucket" in q.sql and q.params["until"] == date(2026, 1, 31)
    [q] = plan(request(), ADMIN, "db", series=False)
    assert "bucket" not in q.sql
    assert len(buckets(request(granularity="hour", since="2026-03-01", until="2026-03-02"))) == 48
    weeks = buckets(request(granularity="week", since="2026-01-01", until="2026-01-12"))
    assert weeks == [datetime(2025, 12, 29), datetime(2026, 1, 5), datetime(2026, 1, 12)]


def test_the_listing_shows_what_the_scope_may_ask_for():
    every = catalogue(ADMIN)
    assert [m["name"] for m in every["metrics"]] == list(PUBLIC)
    assert {d["name"] for d in every["dimensions"]} == set(DIMENSIONS) and every["granularities"] == ["hour", "day", "week"]
    mine = {m["name"] for m in catalogue(PARTNER)["metrics"]}
    assert mine == set(PARTNER_DEFAULTS)
