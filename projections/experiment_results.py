"""Experiments' exposures and what their leads did, read from ClickHouse (tallied per lead,
people only, by domain.experiments.tally).

Five plain reads, each collapsing repeated rows (a redelivery before a merge) by grouping: the
exposures per experiment and lead (experiment_exposures, migration 022: its arm is its first
exposure's), the people's opens and clicks of the experiments' messages
(send_engagement in each event's latest revision, the machine flag off), the leads'
unsubscribes, the complaints naming one of the messages, and the leads' goals
(engagement.converted). The same five reads answer one experiment or every experiment of a
tenant at once (the dashboard's page: five reads, not five per experiment).
"""
from __future__ import annotations

from collections import defaultdict

from domain.experiments import ArmTally, Exposure, tally

# {which}: one experiment (= %(experiment)s) or any (!= '')
_EXPERIMENT_SENDS = """
SELECT send_id FROM {db}.experiment_exposures
WHERE tenant = %(tenant)s AND experiment {which} AND send_id != ''"""

_EXPOSED_LEADS = """
SELECT lead_id FROM {db}.experiment_exposures WHERE tenant = %(tenant)s AND experiment {which}"""

_EXPOSURES = """
SELECT experiment, lead_id, argMin(variant, occurred_at), toUInt64(min(occurred_at)), groupUniqArray(send_id)
FROM {db}.experiment_exposures
WHERE tenant = %(tenant)s AND experiment {which}
GROUP BY experiment, lead_id"""

_HUMAN = f"""
SELECT send_id, max(kind = 'click') FROM {{db}}.send_engagement FINAL
WHERE machine = 0 AND send_id IN ({_EXPERIMENT_SENDS})
GROUP BY send_id"""

_UNSUBSCRIBED = f"""
SELECT lead_id, toUInt64(min(occurred_at)) FROM {{db}}.events
PREWHERE tenant = %(tenant)s AND event_type = 'lead.unsubscribed'
WHERE lead_id IN ({_EXPOSED_LEADS})
GROUP BY lead_id"""

# the newest goal of each exposed lead (a conversion counts when it came after the first exposure)
_CONVERTED = _UNSUBSCRIBED.replace("'lead.unsubscribed'", "'engagement.converted'").replace("min(", "max(")

_COMPLAINED = f"""
SELECT DISTINCT visitParamExtractString(payload, 'send_id') FROM {{db}}.events
PREWHERE tenant = %(tenant)s AND event_type = 'engagement.complained'
WHERE visitParamExtractString(payload, 'send_id') IN ({_EXPERIMENT_SENDS})"""


QUERIES = ("exposures", "human", "unsubscribed", "complained", "converted")
_SQL = dict(zip(QUERIES, (_EXPOSURES, _HUMAN, _UNSUBSCRIBED, _COMPLAINED, _CONVERTED)))


def count_query(db: str, tenant: str, experiment: str | None, name: str) -> tuple[str, dict]:
    """One of the QUERIES as (sql, params): for one experiment, or every one of the tenant's
    (experiment None). Independent of each other: a caller may run them at once."""
    which = "= %(experiment)s" if experiment else "!= ''"
    return _SQL[name].format(db=db, which=which), {"tenant": tenant, "experiment": experiment or ""}


def arm_counts(client, db: str, tenant: str, experiment: str) -> dict[str, ArmTally]:
    """Every arm of one experiment that has exposed leads, by variant name ("holdout" for the
    held out)."""
    return _counts(client, db, tenant, experiment).get(experiment, {})


def all_arm_counts(client, db: str, tenant: str) -> dict[str, dict[str, ArmTally]]:
    """experiment id -> its arms' tallies, for every experiment of the tenant with exposures."""
    return _counts(client, db, tenant, None)


def _counts(client, db: str, tenant: str, experiment: str | None) -> dict[str, dict[str, ArmTally]]:
    return assemble({name: client.execute(*count_query(db, tenant, experiment, name)) for name in QUERIES})


def assemble(rows: dict[str, list[tuple]]) -> dict[str, dict[str, ArmTally]]:
    """The QUERIES' rows -> experiment id -> its arms' tallies."""
    exposures: dict[str, list[Exposure]] = defaultdict(list)
    for eid, lead, label, first_s, sends in rows["exposures"]:
        exposures[eid].append(Exposure(lead, label.rpartition("/")[2], int(first_s) * 1000,
                                       tuple(s for s in sends if s)))
    # send ids are unique to one experiment; a lead's unsubscribe or goal is checked against
    # each experiment's own first exposure of it (tally)
    human = {send_id: bool(clicked) for send_id, clicked in rows["human"]}
    unsubscribed = {lead: int(at_s) * 1000 for lead, at_s in rows["unsubscribed"]}
    complained = {send_id for (send_id,) in rows["complained"]}
    converted = {lead: int(at_s) * 1000 for lead, at_s in rows["converted"]}
    return {eid: tally(found, human, unsubscribed, complained, converted) for eid, found in sorted(exposures.items())}
