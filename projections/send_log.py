"""The message log from ClickHouse: one row per send id of a tenant, aggregated from its
send.* events, filtered, newest first (domain/send_log.py says what the status is)."""
from __future__ import annotations

from domain.send_log import SEND_EVENT_TYPES, STATUS_RANK, LogQuery, SendRow
from projections.event_history import AT_MS

_RANKS = "[" + ", ".join(str(STATUS_RANK[t.removeprefix("send.")]) for t in SEND_EVENT_TYPES) + "]"
_TYPES = "[" + ", ".join(f"'{t}'" for t in SEND_EVENT_TYPES) + "]"
# how far a send got, then when: the furthest event wins, the latest of one step (ms < 2**42)
_KEY = f"toUInt64(transform(event_type, {_TYPES}, {_RANKS}, 0)) * 4398046511104 + at_ms"

_EVENTS = f"""
SELECT visitParamExtractString(payload, 'send_id') AS sid, event_type, lead_id, channel, list,
       visitParamExtractString(payload, 'provider') AS provider,
       visitParamExtractString(payload, 'kind') AS kind,
       visitParamExtractString(payload, 'trigger') AS trig,
       visitParamExtractString(payload, 'template') AS tmpl,
       visitParamExtractString(payload, 'reason') AS reason,
       {AT_MS} AS at_ms, {_KEY} AS k
FROM {{db}}.events PREWHERE tenant = %(tenant)s AND event_type IN %(types)s"""

_SENDS = f"""
SELECT sid, replaceOne(argMax(event_type, k), 'send.', '') AS status, anyIf(lead_id, lead_id != ''),
       anyIf(channel, channel != '') AS ch, anyIf(list, list != '') AS lst,
       argMaxIf(provider, k, provider != '') AS prov, anyIf(kind, kind != ''),
       anyIf(trig, event_type = 'send.requested' AND trig != ''),
       anyIf(tmpl, event_type = 'send.requested' AND tmpl != ''),
       argMax(reason, k), groupArray((at_ms, reason)), min(at_ms) AS first_ms, max(at_ms),
       groupUniqArray(reason) AS reasons_given
FROM ({_EVENTS})
GROUP BY sid"""


def send_log(client, db: str, q: LogQuery) -> list[SendRow]:
    """One page of the log: sends matching every filter given, newest request first."""
    having, params = _conditions(q)
    sql = (_SENDS.format(db=db) + (" HAVING " + " AND ".join(having) if having else "")
           + " ORDER BY first_ms DESC, sid DESC LIMIT %(limit)s")
    rows = client.execute(sql, {**params, "tenant": q.tenant, "types": SEND_EVENT_TYPES, "limit": int(q.limit)})
    return [SendRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], [tuple(p) for p in r[10]],
                    int(r[11]), int(r[12])) for r in rows]


def _conditions(q: LogQuery) -> tuple[list[str], dict]:
    """The HAVING clauses and their parameters (values are always passed as parameters)."""
    having, params = [], {}
    for name, column, value in (("status", "status", q.status), ("provider", "prov", q.provider),
                                ("channel", "ch", q.channel), ("list", "lst", q.list)):
        if value is not None:
            having.append(f"{column} = %({name})s")
            params[name] = value
    if q.reason is not None:
        having.append("has(reasons_given, %(reason)s)")
        params["reason"] = q.reason
    if q.before_ms is not None:
        having.append("(first_ms < %(before)s OR (first_ms = %(before)s AND sid < %(before_send)s))")
        params.update(before=q.before_ms, before_send=q.before_send or "")
    return having, params
