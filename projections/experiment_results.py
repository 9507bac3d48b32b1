"""An experiment's exposures and what its leads did, read from ClickHouse (tallied per lead,
people only, by domain.experiments.tally).

Four plain reads keyed by tenant and event type (the events table's order), each collapsing
repeated rows (a redelivery before a merge) by grouping: the exposures per lead (its arm is its
first exposure's), the people's opens and clicks of the experiment's messages (send_engagement
in each event's latest revision, the machine flag off), the leads' unsubscribes and the
complaints naming one of the messages, and the leads' goals (engagement.converted).
"""
from __future__ import annotations

from domain.experiments import ArmTally, Exposure, tally

_EXPERIMENT_SENDS = """
SELECT visitParamExtractString(payload, 'send_id') FROM {db}.events
PREWHERE tenant = %(tenant)s AND event_type = 'send.dispatched'
WHERE visitParamExtractString(payload, 'experiment') = %(experiment)s"""

_EXPOSURES = """
SELECT lead_id, argMin(visitParamExtractString(payload, 'variant'), occurred_at), toUInt64(min(occurred_at)),
       groupUniqArray(if(event_type = 'send.dispatched', visitParamExtractString(payload, 'send_id'), ''))
FROM {db}.events PREWHERE tenant = %(tenant)s AND event_type IN ('send.dispatched', 'send.skipped')
WHERE visitParamExtractString(payload, 'experiment') = %(experiment)s
GROUP BY lead_id"""

_HUMAN = f"""
SELECT send_id, max(kind = 'click') FROM {{db}}.send_engagement FINAL
WHERE machine = 0 AND send_id IN ({_EXPERIMENT_SENDS})
GROUP BY send_id"""

_UNSUBSCRIBED = """
SELECT lead_id, toUInt64(min(occurred_at)) FROM {db}.events
PREWHERE tenant = %(tenant)s AND event_type = 'lead.unsubscribed'
WHERE lead_id IN (SELECT lead_id FROM {db}.events PREWHERE tenant = %(tenant)s
                  AND event_type IN ('send.dispatched', 'send.skipped')
                  WHERE visitParamExtractString(payload, 'experiment') = %(experiment)s)
GROUP BY lead_id"""

# the newest goal of each exposed lead (a conversion counts when it came after the first exposure)
_CONVERTED = _UNSUBSCRIBED.replace("'lead.unsubscribed'", "'engagement.converted'").replace("min(", "max(")

_COMPLAINED = f"""
SELECT DISTINCT visitParamExtractString(payload, 'send_id') FROM {{db}}.events
PREWHERE tenant = %(tenant)s AND event_type = 'engagement.complained'
WHERE visitParamExtractString(payload, 'send_id') IN ({_EXPERIMENT_SENDS})"""


def arm_counts(client, db: str, tenant: str, experiment: str) -> dict[str, ArmTally]:
    """Every arm that has exposed leads, by variant name ("holdout" for the held out)."""
    params = {"tenant": tenant, "experiment": experiment}

    def run(sql: str) -> list[tuple]:
        return client.execute(sql.format(db=db), params)

    exposures = [Exposure(lead, label.rpartition("/")[2], int(first_s) * 1000, tuple(s for s in sends if s))
                 for lead, label, first_s, sends in run(_EXPOSURES)]
    human = {send_id: bool(clicked) for send_id, clicked in run(_HUMAN)}
    unsubscribed = {lead: int(at_s) * 1000 for lead, at_s in run(_UNSUBSCRIBED)}
    complained = {send_id for (send_id,) in run(_COMPLAINED)}
    converted = {lead: int(at_s) * 1000 for lead, at_s in run(_CONVERTED)}
    return tally(exposures, human, unsubscribed, complained, converted)
