"""Erasure in ClickHouse: an erased lead's rows keep counting, under an anonymous id, with every
personal field emptied; and the audit's search of every text column for a person's traces.

Rows are rewritten by mutations (ALTER TABLE ... UPDATE), waited for until done. The totals an
analyst reads stay what they were: no row is dropped, each erased lead stays one (anonymous)
lead. experiment_exposures orders by lead_id (a key column cannot be updated): its rows are
copied under the anonymous id, then the originals deleted.
"""
from __future__ import annotations

import time

ERASED_PAYLOAD = '{"erased":true}'
WAIT_S = 300.0
# table -> what else an erased lead's row loses besides its lead id
_UPDATES = {
    "events": f"payload = '{ERASED_PAYLOAD}'",
    "engagement": "ip = '', user_agent = ''",
    "send_events": "",
}
_EXPOSURES = ("tenant, experiment, {lead}, variant, occurred_at, send_id, event_id, ingested_at")


def scrub_leads(client, db: str, tenant: str, anonymous: dict[str, str]) -> int:
    """Every row of these leads (lead id -> anonymous id) rewritten; returns the rows touched."""
    if not anonymous:
        return 0
    leads, anons = list(anonymous), list(anonymous.values())
    params = {"tenant": tenant, "leads": leads, "anons": anons, "among": tuple(leads)}
    lead = "transform(lead_id, %(leads)s, %(anons)s, lead_id)"
    where = "tenant = %(tenant)s AND lead_id IN %(among)s"
    touched = 0
    for table, more in _UPDATES.items():
        [(n,)] = client.execute(f"SELECT count() FROM {db}.{table} WHERE {where}", params)
        if n:
            sets = f"lead_id = {lead}" + (f", {more}" if more else "")
            client.execute(f"ALTER TABLE {db}.{table} UPDATE {sets} WHERE {where}", params)
            touched += n
    [(n,)] = client.execute(f"SELECT count() FROM {db}.experiment_exposures WHERE {where}", params)
    if n:
        client.execute(f"INSERT INTO {db}.experiment_exposures SELECT {_EXPOSURES.format(lead=lead)} "
                       f"FROM {db}.experiment_exposures WHERE {where}", params)
        client.execute(f"ALTER TABLE {db}.experiment_exposures DELETE WHERE {where}", params)
        touched += n
    wait_for_mutations(client, db)
    return touched


def wait_for_mutations(client, db: str, timeout_s: float = WAIT_S) -> None:
    """Returns once every mutation of the database is done; TimeoutError if one is not in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        [(left,)] = client.execute("SELECT count() FROM system.mutations WHERE database = %(db)s AND is_done = 0",
                                   {"db": db})
        if not left:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} ClickHouse mutation(s) of {db} not done after {timeout_s:.0f}s")
        time.sleep(0.2)


def find_traces(client, db: str, needles: list[str]) -> list[tuple[str, str, int]]:
    """(table, column, rows) for every text column of every table holding one of the needles."""
    needles = [n for n in needles if n]
    if not needles:
        return []
    columns = client.execute(
        "SELECT c.table, c.name FROM system.columns AS c ANY INNER JOIN "
        "(SELECT name AS table FROM system.tables WHERE database = %(db)s AND engine NOT LIKE '%%View') AS t "
        "USING table WHERE c.database = %(db)s AND c.type = 'String'", {"db": db})
    out = []
    for table, column in columns:
        cond = " OR ".join(f"position(`{column}`, %(n{i})s) > 0" for i in range(len(needles)))
        [(n,)] = client.execute(f"SELECT count() FROM {db}.`{table}` WHERE {cond}",
                                {f"n{i}": v for i, v in enumerate(needles)})
        if n:
            out.append((table, column, n))
    return out
