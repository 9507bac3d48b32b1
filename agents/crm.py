"""CRM agent: both directions of each brand's CRM sync (services/crm/).

In: every tick, each brand's CRM that is due (its interval passed, or a webhook asked) is read by
cursor into the normal intake (sync_in.py). Out: it follows leads.events and engagement.events
into each lead's CRM record and outbox, and every tick writes the due leads' engagement back on
their contacts within the brand's share of the CRM's rate limit (sync_out.py).
"""
from __future__ import annotations

import time

from channels.dkim import KeyLoader
from services.crm.sync_in import poll_crms
from services.crm.sync_out import follow, write_back_all
from streams.batching import oldest_ms, run_batch
from streams.topics import ENGAGEMENT_EVENTS, LEAD_EVENTS

CRM_TICK_S = 3.0  # a CRM is polled every its every_s, or at the next tick after its webhook


def register(app, deps) -> None:
    s = deps.settings
    topics = app.topic(deps.topic(LEAD_EVENTS), deps.topic(ENGAGEMENT_EVENTS), value_serializer="raw",
                       key_serializer="raw")
    secrets = KeyLoader(s.secrets_dir)

    @app.agent(topics, name="crm")
    async def crm(stream):
        async for events in stream.take_events(s.batch_size, within=s.batch_seconds):
            values = [e.message.value for e in events]
            await run_batch("crm", lambda: follow(deps, values), oldest_event_ms=oldest_ms(events))

    @app.timer(interval=CRM_TICK_S)
    async def poll_in() -> None:
        await poll_crms(deps, secrets, int(time.time() * 1000))

    @app.timer(interval=CRM_TICK_S)
    async def write_out() -> None:
        await write_back_all(deps, secrets, int(time.time() * 1000))
