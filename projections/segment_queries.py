"""Query segments: a tenant's SELECT run against the analytics database, read-only, bounded."""
from __future__ import annotations

import asyncio

from projections.clickhouse import connect

MAX_MEMBERS = 5_000_000
QUERY_SETTINGS = {"readonly": 1, "max_execution_time": 60, "max_result_rows": MAX_MEMBERS,
                  "result_overflow_mode": "throw"}


class ClickHouseSegmentQueries:
    def __init__(self, host: str, port: int, database: str):
        self.host, self.port, self.database = host, port, database

    async def lead_ids(self, sql: str) -> set[str]:
        """The first column of every row, as lead ids (run in a thread: the driver blocks)."""
        return await asyncio.to_thread(self._run, sql)

    def _run(self, sql: str) -> set[str]:
        client = connect(self.host, self.port, self.database)
        try:
            return {str(row[0]) for row in client.execute(sql, settings=QUERY_SETTINGS)}
        finally:
            client.disconnect()
