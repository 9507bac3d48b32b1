"""Builds the trigger engine for a process: its Redis stores and the configuration."""
from __future__ import annotations

from projections.redis_segments import SegmentStore
from projections.segment_queries import ClickHouseSegmentQueries
from projections.redis_triggers import TriggerStore
from services.triggering.engine import TriggerEngine
from services.triggering.ports import TriggerPorts


def build_trigger_engine(deps) -> TriggerEngine:
    s = deps.settings
    store = TriggerStore(deps.redis)
    return TriggerEngine(TriggerPorts(book=lambda: deps.tenants, history=store, segments=SegmentStore(deps.redis),
                                      leads=deps.leads, scores=store, lead_ids=deps.lead_ids, queries=ClickHouseSegmentQueries(
                                          s.clickhouse_host, s.clickhouse_port, s.clickhouse_database),
                                      lease_ms=int(s.trigger_lease_s * 1000)))


def build_conversions(deps):
    """Conversion attribution over this process's Redis."""
    from projections.redis_clicks import ClickMarks
    from projections.redis_sends import SendState
    from services.conversions import Conversions
    return Conversions(lambda: deps.tenants, ClickMarks(deps.redis), SendState(deps.redis))
