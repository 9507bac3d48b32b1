"""The Faust app: one app (one consumer group) per agent, so each scales on its own lag."""
from __future__ import annotations

import faust

from streams import faust_codec
from streams.logs import faust_logging_config
from streams.settings import Settings


def make_app(agent: str, s: Settings) -> faust.App:
    """A Faust app whose consumer group is leadstream-<agent>."""
    faust_codec.register()
    return faust.App(
        f"{s.topic_prefix}leadstream-{agent}",
        broker=f"kafka://{s.kafka_bootstrap}",
        store="memory://",
        datadir=str(s.run_dir / "faust"),  # not the working directory (the repository)
        web_enabled=False,
        topic_partitions=s.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4 * s.batch_size, 8192),
        producer_acks=-1,
        broker_max_poll_records=s.batch_size,
        # a worker killed with SIGKILL leaves the group after this, and its partitions move to
        # the others: Faust's default of 60 s would leave them unconsumed for a minute
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        logging_config=faust_logging_config(f"worker-{agent}", s.log_format),
    )
