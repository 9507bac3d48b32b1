"""Config-history agent: config.history -> {db}.config_history, the audit log analysts and
GET /v1/audit read. A plain read_committed consumer (streams/plain_consumer.py): the history
is written in transactions, and an aborted one must never reach the audit log.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from projections.config_rows import CONFIG_COLUMNS, config_row
from schemas.codec import DecodeError
from streams.plain_consumer import Message, run_plain
from streams.topics import CONFIG_HISTORY

AGENT = "config_history"
log = logging.getLogger("leadstream.config_history")


def rows_for(deps, msgs: list[Message]) -> list[tuple]:
    """The rows of a batch; an undecodable message is logged and skipped (the writer checked
    every event, so one can only be foreign bytes)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    rows = []
    for topic, partition, offset, _key, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError as exc:
            log.error(
                "%s[%d]@%d undecodable, skipped: %s", topic, partition, offset, exc)
            continue
        rows.append(config_row(name, ev, now))
    return rows


async def run(deps) -> None:
    s = deps.settings
    client = deps.clickhouse()
    table = f"{s.clickhouse_database}.config_history"

    async def project(msgs: list[Message]) -> int:
        rows = rows_for(deps, msgs)
        if rows:
            await asyncio.to_thread(client.execute, f"INSERT INTO {table} ({', '.join(CONFIG_COLUMNS)}) VALUES",
                                    list(zip(*rows)), columnar=True)
        return len(msgs)
    await run_plain(AGENT, f"{s.topic_prefix}leadstream-{AGENT}", [deps.topic(CONFIG_HISTORY)],
                    s.kafka_bootstrap, project)
