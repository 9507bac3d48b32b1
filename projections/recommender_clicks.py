"""The click log a recommender is trained on, read from ClickHouse: people's clicks on jobs in
our messages (the matched jobs' links and the recommended ones'), each click once in its latest
revision (a click later found to be a machine's is left out)."""
from __future__ import annotations

from domain.recommend import Click

_CLICKS = """
SELECT lead_id, job, toUInt64(at) * 1000 FROM (
    SELECT event_id, any(lead_id) AS lead_id, any(visitParamExtractString(payload, 'job_key')) AS job,
           min(occurred_at) AS at,
           argMax(visitParamExtractBool(payload, 'is_bot'), visitParamExtractUInt(payload, 'revision')) AS bot
    FROM {db}.events
    PREWHERE tenant = %(tenant)s AND event_type = 'engagement.clicked'
    WHERE occurred_at >= toDateTime(%(since_s)s)
    GROUP BY event_id)
WHERE bot = 0 AND job != ''
ORDER BY at"""


def click_log(client, db: str, tenant: str, since_ms: int) -> list[Click]:
    """(lead id, job key, at ms) of every person's job click since since_ms, oldest first."""
    return [(lead, job, int(at)) for lead, job, at in
            client.execute(_CLICKS.format(db=db), {"tenant": tenant, "since_s": since_ms // 1000})]
