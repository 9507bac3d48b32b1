"""The message log from ClickHouse: one row per send id of a tenant, aggregated from its
send.* events (the send_events table, migration 023), filtered, newest first
(domain/send_log.py says what the status is).

Two steps in one query: the page's send ids first, from only the aggregates the filters need,
then the full row of those ids alone (the table is ordered by tenant and send id)."""
from __future__ import annotations

from domain.send_log import SEND_EVENT_TYPES, STATUS_RANK, LogQuery, SendRow

_RANKS = "[" + ", ".join(str(STATUS_RANK[t.removeprefix("send.")]) for t in SEND_EVENT_TYPES) + "]"
_TYPES = "[" + ", ".join(f"'{t}'" for t in SEND_EVENT_TYPES) + "]"
# how far a send got, then when: the furthest event wins, the latest of one step (ms < 2**42)
_KEY = f"toUInt64(transform(event_type, {_TYPES}, {_RANKS}, 0)) * 4398046511104 + at_ms"

# the aggregates a filter may name, by the name the HAVING clause uses
_FILTERABLE = {
    "status": "replaceOne(argMax(event_type, k), 'send.', '')",
    "ch": "anyIf(channel, channel != '')",
    "lst": "anyIf(list, list != '')",
    "prov": "argMaxIf(provider, k, provider != '')",
    "reasons_given": "groupUniqArray(reason)",
}

_PAGE = """
SELECT send_id, min(at_ms) AS first_ms{aggregates}
FROM (SELECT send_id, event_type, at_ms, channel, list, provider, reason, {key} AS k
      FROM {db}.send_events PREWHERE tenant = %(tenant)s)
GROUP BY send_id{having}
ORDER BY first_ms DESC, send_id DESC LIMIT %(limit)s"""

_ROWS = f"""
SELECT send_id, {_FILTERABLE['status']} AS status, anyIf(lead_id, lead_id != ''),
       {_FILTERABLE['ch']}, {_FILTERABLE['lst']}, {_FILTERABLE['prov']}, anyIf(kind, kind != ''),
       anyIf(trigger_id, event_type = 'send.requested' AND trigger_id != ''),
       anyIf(template, event_type = 'send.requested' AND template != ''),
       argMax(reason, k), groupArray((at_ms, reason)), min(at_ms) AS first_ms, max(at_ms)
FROM (SELECT *, {_KEY} AS k FROM {{db}}.send_events
      PREWHERE tenant = %(tenant)s AND send_id IN (SELECT send_id FROM ({{page}})))
GROUP BY send_id
ORDER BY first_ms DESC, send_id DESC"""


def send_log(client, db: str, q: LogQuery) -> list[SendRow]:
    """One page of the log: sends matching every filter given, newest request first."""
    having, params, named = _conditions(q)
    page = _PAGE.format(db=db, key=_KEY, aggregates="".join(f", {_FILTERABLE[n]} AS {n}" for n in named),
                        having=" HAVING " + " AND ".join(having) if having else "")
    rows = client.execute(_ROWS.format(db=db, page=page), {**params, "tenant": q.tenant, "limit": int(q.limit)})
    return [SendRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], [tuple(p) for p in r[10]],
                    int(r[11]), int(r[12])) for r in rows]


def _conditions(q: LogQuery) -> tuple[list[str], dict, list[str]]:
    """The HAVING clauses, their parameters (values are always passed as parameters) and the
    aggregates they name."""
    having, params, named = [], {}, []
    for name, column, value in (("status", "status", q.status), ("provider", "prov", q.provider),
                                ("channel", "ch", q.channel), ("list", "lst", q.list)):
        if value is not None:
            having.append(f"{column} = %({name})s")
            params[name] = value
            named.append(column)
    if q.reason is not None:
        having.append("has(reasons_given, %(reason)s)")
        params["reason"] = q.reason
        named.append("reasons_given")
    if q.before_ms is not None:
        having.append("(first_ms < %(before)s OR (first_ms = %(before)s AND send_id < %(before_send)s))")
        params.update(before=q.before_ms, before_send=q.before_send or "")
    return having, params, named
