"""Conversion attribution: people's clicks remembered, goal events turned into
engagement.converted (domain/conversions.py decides; this gathers and stores).

Fed by the triggers agent with the events it already reads (product events and
engagement.clicked): a click is remembered before a goal of the same batch is judged, so a click
and the application it led to, arriving together, are attributed.
"""
from __future__ import annotations

from typing import Callable, Protocol

import orjson

from domain.conversions import click_mark, converted, is_goal, revised_away
from domain.engagement import event_ms
from domain.tenants import TenantBook


class Clicks(Protocol):
    async def remember(self, marks: list) -> None: ...
    async def forget(self, clicks: list[tuple[str, str, str]]) -> None: ...
    async def last(self, keys: list[tuple[str, str]]) -> list: ...


class Sends(Protocol):
    async def histories(self, keys: list[tuple[str, str]]) -> list[list[dict]]: ...


class Conversions:
    """The use case: `on_events(batch)` -> the engagement.converted events it decides."""

    def __init__(self, book: Callable[[], TenantBook], clicks: Clicks, sends: Sends):
        self.book, self.clicks, self.sends = book, clicks, sends

    async def on_events(self, batch: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        book = self.book()
        marks, forget, goals = [], [], []
        for name, ev in batch:
            tenant = book.tenants.get(ev.get("tenant", ""))
            if tenant is None or not ev.get("lead_id") or ev.get("resolved") is False:
                continue
            if name == "engagement.clicked":
                if revised_away(ev):
                    forget.append((ev["tenant"], ev["lead_id"], ev["event_id"]))
                elif (mark := click_mark(ev, event_ms(ev["occurred_at"]))) is not None:
                    marks.append((ev["tenant"], ev["lead_id"], mark))
            elif name == "product.tracked" and is_goal(tenant.conversions, ev["name"]):
                goals.append((ev, tenant.conversions))
        await self.clicks.remember(marks)
        await self.clicks.forget(forget)
        if not goals:
            return []
        keys = [(ev["tenant"], ev["lead_id"]) for ev, _ in goals]
        last = await self.clicks.last(keys)
        histories = await self.sends.histories(keys)
        out = []
        for (ev, policy), mark, history in zip(goals, last, histories):
            sent = next((h for h in history if mark and h.get("send_id") == mark.send_id), None)
            props = orjson.loads(ev["properties"]) if isinstance(ev.get("properties"), str) else ev.get("properties") or {}
            out.append(converted(ev, props, event_ms(ev["occurred_at"]), policy, mark, sent))
        return out
