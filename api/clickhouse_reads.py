"""Running a ClickHouse read for a request: in a worker thread (the driver blocks), on a
pooled connection, and a 503 problem when ClickHouse does not answer."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from clickhouse_driver import errors as ch_errors

from api.errors import ApiError
from projections.analytics import ClientPool

CLICKHOUSE_DOWN = (ch_errors.NetworkError, ch_errors.SocketTimeoutError, ConnectionError, EOFError, OSError)


def reads_pool(deps, size: int = 2) -> ClientPool:
    """A few connections for one router's reads."""
    return ClientPool(deps.clickhouse, size=size)


async def read(pool: ClientPool, query: Callable[..., Any], *args) -> Any:
    """query(client, *args) on a pooled connection, off the event loop."""
    def run():
        with pool.client() as client:
            return query(client, *args)
    try:
        return await asyncio.to_thread(run)
    except CLICKHOUSE_DOWN as exc:
        raise ApiError(503, "unavailable", f"the event store (ClickHouse) is not answering: {exc}; retry",
                       headers={"Retry-After": "5"}) from None
