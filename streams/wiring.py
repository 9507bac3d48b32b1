"""Builds everything a process needs from Settings: the one place that wires adapters."""
from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from domain.tenants import TenantBook
from projections.redis_leads import LeadStore
from schemas.codec import Codec, default_codec
from streams.producer import AsyncProducer
from streams.settings import Settings, load_tenants


@dataclass
class Deps:
    settings: Settings
    tenants: TenantBook
    codec: Codec
    _producer: AsyncProducer | None = field(default=None, repr=False)
    _redis: aioredis.Redis | None = field(default=None, repr=False)

    @property
    def producer(self) -> AsyncProducer:
        if self._producer is None:
            self._producer = AsyncProducer(self.settings.kafka_bootstrap)
        return self._producer

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.settings.redis_url, socket_timeout=10,
                                                  socket_connect_timeout=5)
        return self._redis

    @property
    def leads(self) -> LeadStore:
        return LeadStore(self.redis)

    def topic(self, name: str) -> str:
        return f"{self.settings.topic_prefix}{name}"

    def clickhouse(self):
        from projections.clickhouse import connect
        s = self.settings
        return connect(s.clickhouse_host, s.clickhouse_port)


def build(settings: Settings) -> Deps:
    return Deps(settings, load_tenants(settings.tenants_file), default_codec())
