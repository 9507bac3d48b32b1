"""The digest pipeline's items and memberships rebuilt from the topics (part of `runtime.replay
--redis`): activity.events folded again by the same keeper the activity agent runs (every write is
idempotent), with people's opens, clicks and product events as sightings.

Runs are not rebuilt: a run of the last catch-up hours is planned again, and its members' digests
carry the send ids they had, which the sender's marks (rebuilt from send.dispatched) already hold.
"""
from __future__ import annotations

from typing import Callable

from domain.activity_input import queued_problem
from runtime.replay_forget import forget
from schemas.codec import DecodeError
from services.digests import ActivityKeeper
from streams.topics import ACTIVITY_EVENTS, ENGAGEMENT_EVENTS, PRODUCT_EVENTS

PREFIXES = ("ls:dgtop:", "ls:dgitem:", "ls:dgmem:", "ls:dgpeople:", "ls:dgtz:", "ls:dgzones:", "ls:dggroup:")
MEMBERSHIPS = ("activity.joined", "activity.left")
SIGHTINGS = ("activity.posted", "engagement.opened", "engagement.clicked", "product.tracked")
CHUNK = 5000


async def rebuild_digests(deps, read_topics: Callable, tick: Callable[[str, int, int], None],
                          forgotten: bool = False) -> dict:
    """Delete the items and memberships (unless the caller did), fold them again; counts of what
    was folded."""
    if not forgotten:
        await forget(deps.redis, PREFIXES)

    async def lead_timezones(keys):
        return [st.timezone if st else None for st in await deps.leads.get_many(keys)]

    keeper, book = ActivityKeeper(deps.digest_store(), lead_timezones), deps.tenants
    folded, bad = 0, 0
    # memberships first, then items and sightings (a post is its author's): a sighting only
    # raises a member's last seen, so applied after every join it gives what the live agent
    # kept (partitions read together come in any order: a post before its author's join)
    for topics, wanted in (((ACTIVITY_EVENTS,), MEMBERSHIPS),
                           ((ACTIVITY_EVENTS, ENGAGEMENT_EVENTS, PRODUCT_EVENTS), SIGHTINGS)):
        total, msgs = read_topics(deps, [deps.topic(t) for t in topics])
        batch = []
        for _, _, _, value in msgs:
            tick(f"digest {'memberships' if wanted is MEMBERSHIPS else 'items and sightings'}", 1, total)
            try:
                decoded = deps.codec.decode_if(value or b"", wanted)  # sends, hits, bounces: not read
            except DecodeError:
                bad += 1
                continue
            if decoded is None:
                continue
            name, ev = decoded
            if ev.get("tenant") in book.tenants and not (
                    name.startswith("activity.") and queued_problem(name, ev)):  # what the agent dead-lettered
                batch.append((name, ev))
            if len(batch) >= CHUNK:
                folded += await keeper.keep(batch, book)
                batch = []
        folded += await keeper.keep(batch, book)
    return {"digest_activity": folded, "digest_undecodable": bad}
