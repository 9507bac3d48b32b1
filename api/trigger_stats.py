"""What the tenant's behaviour triggers and segments did, for the dashboard's Triggers page:
GET /v1/tenants/{tenant}/triggers-stats?since=YYYY-MM-DD&until=YYYY-MM-DD

Counted in ClickHouse from the trigger engine's events (trigger.scheduled / fired / suppressed /
deferred, segment.entered / exited) and the send.* events of the messages the triggers
requested (projections/trigger_stats.py); shaped in domain/trigger_stats.py.
"""
from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.access import rule
from api.clickhouse_reads import read, reads_pool
from api.errors import ApiError
from domain.accounting import PeriodError
from domain.trigger_stats import DEFAULT_DAYS, MAX_DAYS, stats_period, trigger_stats
from projections.trigger_stats import trigger_stats_rows


class TriggerStats(BaseModel):
    """One trigger over the period. Every count is of events in the period (UTC days)."""

    trigger: str = Field(description="the trigger's id")
    configured: bool = Field(description="in the tenant's configuration now; false: seen only in the period's "
                                         "events (removed since)")
    matched: int = Field(description="times an event matched the trigger's `when` and its conditions held "
                                     "(one send id each, then scheduled, fired, deferred or suppressed). An event "
                                     "matching `when` whose conditions did not hold is not recorded")
    scheduled: int = Field(description="matches that waited on a timer (an absent window, a delay or a local "
                                       "time of day): trigger.scheduled")
    deferred: int = Field(description="messages held for the end of the lead's quiet hours and judged again "
                                      "then: trigger.deferred")
    fired: int = Field(description="messages requested: trigger.fired (each with its send.requested)")
    suppressed: dict[str, int] = Field(
        description="matches that sent nothing, by reason (trigger.suppressed): cooldown, capped_day, capped_week, "
                    "goal_reached, completed (the awaited event came in the absent window), not_subscribed, "
                    "wrong_channel, trigger_removed... Only reasons that occurred appear")
    goals_reached: int = Field(description="waiting messages cancelled because the lead reached the trigger's goal "
                                           "(the same events as suppressed.goal_reached)")
    sends_requested: int = Field(description="the trigger's sends requested in the period (send.requested naming "
                                             "trigger:<id>); the sends_* below are of these sends, at any time since")
    sends_dispatched: int = Field(description="of those, sends a provider accepted (send.dispatched)")
    sends_delivered: int = Field(description="of those, sends the provider reported delivered (send.delivered)")
    sends_bounced: int = Field(description="of those, sends the provider reported bounced (send.bounced)")
    sends_failed: int = Field(description="of those, sends that failed for good (send.failed)")
    sends_skipped: int = Field(description="of those, sends the sender did not send (send.skipped: unsubscribed, "
                                           "suppressed, already sent...)")
    unique_leads_fired: int = Field(description="distinct leads the trigger fired for")
    last_fired_at: str | None = Field(description="its last trigger.fired in the period, ISO 8601 UTC; null: none")


class SegmentStats(BaseModel):
    """One segment over the period."""

    segment: str = Field(description="the segment's id")
    configured: bool = Field(description="in the tenant's configuration now; false: seen only in events")
    entered: int = Field(description="leads entering it (segment.entered)")
    left: int = Field(description="leads leaving it (segment.exited)")


class TriggersStatsOut(BaseModel):
    since: str = Field(description="the first day counted, YYYY-MM-DD (UTC)")
    until: str = Field(description="the last day counted, inclusive, YYYY-MM-DD (UTC)")
    triggers: list[TriggerStats] = Field(description="every configured trigger (zeros when nothing happened) and "
                                                     "any other seen in the period's events, by id")
    segments: list[SegmentStats] = Field(description="every configured segment and any other seen, by id")
    unknown_person_events: int = Field(description="product events about an address that is no lead of the tenant "
                                                   "(trigger.suppressed unknown_person: no trigger was judged)")


_ERRORS = {422: {"description": "a malformed day or a period reversed, too long or in the future: `problems` "
                                "names the field (since or until)"},
           503: {"description": "ClickHouse is not answering; retry"}}


def trigger_stats_router(deps) -> APIRouter:
    """The route; the app-wide access dependency enforces config.read on the path's tenant."""
    pool = reads_pool(deps)
    router = APIRouter(tags=["triggers"])

    @router.get("/v1/tenants/{tenant}/triggers-stats", response_model=TriggersStatsOut, responses=_ERRORS,
                openapi_extra=rule("config.read", "path"))
    async def triggers_stats(
        tenant: str,
        since: str | None = Query(None, description=f"first day, YYYY-MM-DD (UTC); default: the {DEFAULT_DAYS} "
                                                    f"days ending on until", examples=["2026-11-01"]),
        until: str | None = Query(None, description=f"last day, inclusive, YYYY-MM-DD (UTC); default today, at "
                                                    f"most tomorrow; at most {MAX_DAYS} days from since",
                                  examples=["2026-11-30"]),
    ) -> dict:
        """Each trigger's matches, firings, suppressions by reason, goals reached, the sends it
        requested and how far they got, and the leads it fired for; each segment's entries and
        exits. Every configured trigger and segment appears, with zeros when nothing happened."""
        try:
            period = stats_period(since, until, datetime.now(timezone.utc).date())
        except PeriodError as exc:
            raise ApiError(422, "validation_failed", "invalid period",
                           [{"field": exc.field, "problem": str(exc)}]) from None
        rows = await read(pool, trigger_stats_rows, deps.settings.clickhouse_database, tenant, period)
        brand = deps.tenants.tenants[tenant]
        return trigger_stats(period, brand.triggers, brand.segments, rows)

    return router
