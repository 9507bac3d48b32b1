"""A tenant's trigger and segment events over a period, counted in ClickHouse (the shapes are
domain/trigger_stats.py's).

Each count is of distinct event ids (or send ids, or lead ids), so a row held twice before the
table's merge counts once. The events table is keyed by (tenant, event_type, event_id): every
read names its tenant and event types first.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from domain.partner_reports import Period
from domain.trigger_stats import (SEGMENT_EVENT_TYPES, SEND_EVENT_TYPES, TRIGGER_EVENT_TYPES, TRIGGERED_SEND,
                                  SegmentCounts, SendCounts, StatsRows, SuppressedCount, TriggerCounts)
from projections.event_history import AT_MS

_IN_PERIOD = "occurred_at >= %(start)s AND occurred_at < %(end)s"

_TRIGGERS = f"""
SELECT trig, uniqExactIf(sid, sid != ''),
       uniqExactIf(event_id, event_type = 'trigger.scheduled'), uniqExactIf(event_id, event_type = 'trigger.deferred'),
       uniqExactIf(event_id, event_type = 'trigger.fired'), uniqExactIf(lead_id, event_type = 'trigger.fired'),
       maxIf(at_ms, event_type = 'trigger.fired')
FROM (SELECT event_id, event_type, lead_id, visitParamExtractString(payload, 'trigger') AS trig,
             visitParamExtractString(payload, 'send_id') AS sid, {AT_MS} AS at_ms
      FROM {{db}}.events PREWHERE tenant = %(tenant)s AND event_type IN %(trigger_types)s
      WHERE {_IN_PERIOD})
GROUP BY trig"""

_SUPPRESSED = f"""
SELECT visitParamExtractString(payload, 'trigger') AS trig, visitParamExtractString(payload, 'reason') AS reason,
       uniqExact(event_id)
FROM {{db}}.events PREWHERE tenant = %(tenant)s AND event_type = 'trigger.suppressed'
WHERE {_IN_PERIOD}
GROUP BY trig, reason"""

# the sends a trigger requested in the period ("trigger:<id>" in send.requested), each with the
# steps it reached since (an outcome never precedes its request: the scan starts at the period)
_SENDS = f"""
SELECT replaceOne(trig, '{TRIGGERED_SEND}', ''), count(), countIf(dispatched > 0), countIf(delivered > 0),
       countIf(bounced > 0), countIf(failed > 0), countIf(skipped > 0)
FROM (SELECT visitParamExtractString(payload, 'send_id') AS sid,
             anyIf(visitParamExtractString(payload, 'trigger'), event_type = 'send.requested') AS trig,
             sum(event_type = 'send.dispatched') AS dispatched, sum(event_type = 'send.delivered') AS delivered,
             sum(event_type = 'send.bounced') AS bounced, sum(event_type = 'send.failed') AS failed,
             sum(event_type = 'send.skipped') AS skipped
      FROM {{db}}.events PREWHERE tenant = %(tenant)s AND event_type IN %(send_types)s
      WHERE occurred_at >= %(start)s AND sid IN (
          SELECT visitParamExtractString(payload, 'send_id') FROM {{db}}.events
          PREWHERE tenant = %(tenant)s AND event_type = 'send.requested'
          WHERE {_IN_PERIOD} AND visitParamExtractString(payload, 'trigger') LIKE '{TRIGGERED_SEND}%%')
      GROUP BY sid)
GROUP BY trig"""

_SEGMENTS = f"""
SELECT visitParamExtractString(payload, 'segment') AS seg,
       uniqExactIf(event_id, event_type = 'segment.entered'), uniqExactIf(event_id, event_type = 'segment.exited')
FROM {{db}}.events PREWHERE tenant = %(tenant)s AND event_type IN %(segment_types)s
WHERE {_IN_PERIOD}
GROUP BY seg"""


def trigger_stats_rows(client, db: str, tenant: str, period: Period) -> StatsRows:
    """The tenant's trigger, suppression, triggered-send and segment counts over the period's
    UTC days (occurred_at, as stored: UTC)."""
    params = {"tenant": tenant, "start": datetime.combine(period.since, time()),
              "end": datetime.combine(period.until + timedelta(days=1), time()),
              "trigger_types": TRIGGER_EVENT_TYPES, "send_types": SEND_EVENT_TYPES,
              "segment_types": SEGMENT_EVENT_TYPES}

    def run(sql: str) -> list[tuple]:
        return client.execute(sql.format(db=db), params)

    return StatsRows(
        triggers=[TriggerCounts(r[0], *(int(x) for x in r[1:])) for r in run(_TRIGGERS)],
        suppressed=[SuppressedCount(r[0], r[1], int(r[2])) for r in run(_SUPPRESSED)],
        sends=[SendCounts(r[0], *(int(x) for x in r[1:])) for r in run(_SENDS)],
        segments=[SegmentCounts(r[0], int(r[1]), int(r[2])) for r in run(_SEGMENTS)])
