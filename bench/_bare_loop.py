"""The pipeline benchmark's baseline: the same intake and analytics work as the agents
(agents.intake.process, agents.analytics.project), driven by a bare confluent-kafka loop
instead of Faust. Runs until killed. Settings come from the environment."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from confluent_kafka import Consumer

from agents import analytics, intake
from projections.clickhouse import EventsWriter
from streams.settings import get_settings
from streams.topics import LEAD_EVENTS, SUBMITTED
from runtime.deps import build


def main() -> None:
    s = get_settings()
    deps = build(s)
    submitted, events = deps.topic(SUBMITTED), deps.topic(LEAD_EVENTS)
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"{s.topic_prefix}bare-loop",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    ready = os.environ.get("LEADSTREAM_READY_FILE")
    c.subscribe([submitted, events], on_assign=lambda *_: ready and Path(ready).write_text("ready"))
    writer = EventsWriter(deps.clickhouse(), s.clickhouse_database)
    loop = asyncio.new_event_loop()
    while True:
        msgs = c.consume(s.batch_size, timeout=0.2)
        batch = [(m.topic(), m.partition(), m.offset(), m.key(), m.value()) for m in msgs if not m.error()]
        if not batch:
            continue
        subs = [b for b in batch if b[0] == submitted]
        if subs:
            loop.run_until_complete(intake.process(deps, subs))
        loop.run_until_complete(analytics.project(deps, writer, batch))
        c.commit(asynchronous=True)


if __name__ == "__main__":
    main()
