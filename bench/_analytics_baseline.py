"""The analytics answers computed the slow way: by scanning {db}.events (the baseline of
`./dev bench analytics`, and a check that the rollups answer the same).

A drop-in planner for projections.analytics.Analytics: for the same request and scope it
returns queries over the raw events whose rows have the rollup queries' layout (bucket,
group values, base metrics), so both are shaped by the same code and compared as answers.
Every count is over distinct event ids (uniqExact, or a GROUP BY event_id that keeps each
open or click in its latest revision); messages opened or clicked are counted at their first
human (or machine) open or click, found among all of that message's events.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta

from domain.analytics import METRICS, AnalyticsRequest, AnalyticsScope, Query, authorize, base_inputs

_LOC = "visitParamExtractRaw(payload, 'location')"
_ARRAYS = {"keyword": "keywords", "category": "categories"}
LEAD_DIMS = {
    "provider": "visitParamExtractString(payload, 'carrier')",
    "country": f"if(visitParamExtractString({_LOC}, 'country') != '', visitParamExtractString({_LOC}, 'country'), "
               f"visitParamExtractString(payload, 'region'))",
    "state": f"visitParamExtractString({_LOC}, 'state')",
    "keyword": "kw", "category": "kw",
    "variant": "visitParamExtractString(payload, 'variant')",
}
SEND_DIMS = {
    "provider": "visitParamExtractString(payload, 'provider')",
    "kind": "visitParamExtractString(payload, 'kind')",
    "template": "if(event_type = 'send.dispatched', visitParamExtractString(payload, 'template_version'), "
                "visitParamExtractString(payload, 'template'))",
    "creative": "visitParamExtractString(payload, 'creative')",
    "variant": "visitParamExtractString(payload, 'variant')",
}
ENGAGEMENT_DIMS = {d: f"visitParamExtractString(payload, '{d}')" for d in
                   ("template", "creative", "job_source", "provider", "variant")}
SEND_REASON = ("multiIf(event_type = 'send.requested', if(visitParamExtractUInt(payload, 'attempt') > 0, 'retry', ''), "
               "event_type = 'send.bounced', visitParamExtractString(payload, 'bounce_type'), "
               "event_type IN ('send.failed', 'send.deferred', 'send.skipped'), "
               "splitByChar(':', visitParamExtractString(payload, 'reason'))[1], '')")
TOUCHES = ("engagement.opened", "engagement.clicked")
KW_RE = r"""'"((?:[^"\\\\]|\\\\.)*)"'"""  # the same as migration 007's


def _lead_condition(c) -> str:
    if c.event == "lead.rejected_reason":
        return f"event_type = 'lead.rejected' AND has(reasons, '{c.reason}')"
    cond = f"event_type = '{c.event}'"
    if c.reason is not None:
        value = "outcome" if c.event == "lead.resubmitted" else "visitParamExtractString(payload, 'reason')"
        cond += f" AND {value} = '{c.reason}'"
    return cond


def _send_condition(c) -> str:
    return f"event_type = '{c.event}'" + (f" AND {SEND_REASON} = '{c.reason}'" if c.reason is not None else "")


def _plain_condition(c) -> str:  # complaints and replies
    return f"event_type = '{c.event}'" + (
        f" AND visitParamExtractString(payload, 'intent') = '{c.reason}'" if c.reason is not None else "")


def _touch_measure(c) -> str:
    event = c.event.replace("unique.", "engagement.")
    cond = f"e_type = '{event}' AND bot = {int(c.actor == 'machine')}"
    if c.measure == "n":
        return f"countIf({cond})"
    cond += " AND e_slot != 'honeypot'"
    value = {"cents": "e_cpc", "brand_bp": "e_cpc * toInt64(transform(e_tenant, %(share_tenants)s, %(share_bps)s, 0))",
             "unshared_cents": "e_cpc * (NOT has(%(share_tenants)s, e_tenant))"}[c.measure]
    return f"sumIf({value}, {cond})"


def _bucket(grain: str, col: str) -> str:
    return {"hour": f"toStartOfHour({col})", "day": f"toDate({col})", "week": f"toMonday(toDate({col}))"}[grain]


def baseline_plan(request: AnalyticsRequest, scope: AnalyticsScope, db: str, shares: Mapping[str, int] | None = None,
                  series: bool = True) -> list[Query]:
    """Queries over {db}.events answering the request like domain.analytics.plan's do."""
    authorize(request, scope)
    shares = dict(shares or {})
    params: dict = {"start": datetime.combine(request.since, time()),
                    "end": datetime.combine(request.until + timedelta(days=1), time()),
                    "share_tenants": sorted(shares) or [""], "share_bps": [shares[t] for t in sorted(shares)] or [0]}
    scope_sql = []
    if scope.tenants is not None:
        scope_sql.append("tenant IN %(scope_tenants)s")
        params["scope_tenants"] = tuple(sorted(scope.tenants))
    if scope.partner is not None:
        scope_sql.append("partner = %(scope_partner)s")
        params["scope_partner"] = scope.partner
    filters = request.filter_map
    for dim, values in filters.items():
        params[f"f_{dim}"] = tuple(values)
    by_kind: dict[str, list] = {}
    for name in base_inputs(request.metrics):
        c = METRICS[name].count
        kind = c.family if c.family != "engagement" else (
            "firsts" if c.event.startswith("unique.") else "touches" if c.event in TOUCHES else "plain")
        by_kind.setdefault(kind, []).append(METRICS[name])
    grain = request.granularity
    out = []
    for kind, metrics in by_kind.items():
        if kind in ("lead", "send", "plain"):
            dims = {"lead": LEAD_DIMS, "send": SEND_DIMS}.get(kind, ENGAGEMENT_DIMS)
            expr, at = (lambda d: dims.get(d, d)), "occurred_at"  # noqa: E731
        else:
            expr, at = (lambda d: f"e_{d}"), "e_at"  # noqa: E731
        groups = [f"{expr(d)} AS g_{d}" for d in request.group_by]
        where_filters = [f"{expr(d)} IN %(f_{d})s" for d in sorted(filters)]
        head = ([f"{_bucket(grain, at)} AS bucket"] if series else []) + groups
        group_cols = (["bucket"] if series else []) + [f"g_{d}" for d in request.group_by]
        if kind in ("lead", "send", "plain"):
            cond = {"lead": _lead_condition, "send": _send_condition, "plain": _plain_condition}[kind]
            events = sorted({"lead.rejected" if m.count.event == "lead.rejected_reason" else m.count.event
                             for m in metrics})
            joined = [d for d in list(request.group_by) + sorted(filters) if d in _ARRAYS]
            raw = f"visitParamExtractRaw(payload, '{_ARRAYS[joined[0]]}')" if joined else ""
            join = f"\nARRAY JOIN if(empty(extractAll({raw}, {KW_RE})), [''], extractAll({raw}, {KW_RE})) AS kw" \
                if joined else ""
            ids = "event_id, kw" if joined else "event_id"  # a lead counts once under each of its keywords
            select = [f"uniqExactIf({ids}, {cond(m.count)}) AS m_{i}" for i, m in enumerate(metrics)]
            sql = (f"SELECT {', '.join(head + select)}\nFROM {db}.events{join}\n"
                   f"WHERE event_type IN ({', '.join(repr(e) for e in events)}) "
                   f"AND occurred_at >= %(start)s AND occurred_at < %(end)s"
                   + "".join(f" AND {w}" for w in scope_sql + where_filters))
        else:
            latest = ("SELECT event_id, any(event_type) AS e_type, any(occurred_at) AS e_at, any(tenant) AS e_tenant, "
                      "any(partner) AS e_partner, any(list) AS e_list, any(channel) AS e_channel, "
                      + "".join(f"any({e}) AS e_{d}, " for d, e in ENGAGEMENT_DIMS.items()) +
                      "any(visitParamExtractString(payload, 'send_id')) AS e_send, "
                      "any(visitParamExtractString(payload, 'slot')) AS e_slot, "
                      "any(toInt64(visitParamExtractUInt(payload, 'cpc_cents'))) AS e_cpc, "
                      "argMax(toUInt8(visitParamExtractBool(payload, 'is_bot')), "
                      "visitParamExtractUInt(payload, 'revision')) AS bot "
                      f"FROM {db}.events WHERE event_type IN {TOUCHES}"
                      + "".join(f" AND {w}" for w in scope_sql) + " GROUP BY event_id")
            if kind == "firsts":  # each message's first open / click per actor, over all time
                latest = ("SELECT e_send, e_type, bot, min(e_at) AS e_at, any(e_tenant) AS e_tenant, "
                          "any(e_partner) AS e_partner, any(e_list) AS e_list, any(e_channel) AS e_channel, "
                          "any(e_template) AS e_template, any(e_variant) AS e_variant, "
                          "'' AS e_creative, '' AS e_job_source, '' AS e_provider, '' AS e_slot, toInt64(0) AS e_cpc "
                          f"FROM ({latest}) WHERE e_send != '' GROUP BY e_send, e_type, bot")
            select = [f"{_touch_measure(m.count)} AS m_{i}" for i, m in enumerate(metrics)]
            sql = (f"SELECT {', '.join(head + select)}\nFROM ({latest})\nWHERE e_at >= %(start)s AND e_at < %(end)s"
                   + "".join(f" AND {w}" for w in where_filters))
        if group_cols:
            sql += f"\nGROUP BY {', '.join(group_cols)}"
        out.append(Query(kind, "events", sql, dict(params), request.group_by, series, tuple(m.name for m in metrics)))
    return out
