"""Builds everything a process needs from Settings: the one place that wires adapters."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from domain.identity import LeadIds
from domain.tenants import TenantBook
from projections.redis_leads import LeadStore
from schemas.codec import Codec, default_codec
from streams.config_view import ConfigUnavailable, ConfigView, shared_view
from streams.producer import AsyncProducer
from streams.redis_packing import packed
from streams.settings import Settings
from streams.topics import CONFIG, CONFIG_HISTORY


@dataclass
class Deps:
    settings: Settings
    codec: Codec
    _book: TenantBook | None = field(default=None, repr=False)  # fixed: tests and tools only
    _producer: AsyncProducer | None = field(default=None, repr=False)
    _redis: aioredis.Redis | None = field(default=None, repr=False)
    _config_service: object | None = field(default=None, repr=False)
    _view: ConfigView | None = field(default=None, repr=False)
    _data_keys: object | None = field(default=None, repr=False)
    _sealer: object | None = field(default=None, repr=False)
    # False in processes that must answer while Kafka is away (the API): they start reading the
    # configuration in the background and answer 503 until it is loaded
    wait_for_config: bool = True

    @property
    def config(self) -> ConfigView:
        """This process's view of the configuration topic (started on first use)."""
        if self._view is None:
            self._view = shared_view(self.settings.kafka_bootstrap, self.topic(CONFIG), self.codec,
                                     wait=self.wait_for_config)
        return self._view

    @property
    def tenants(self) -> TenantBook:
        """The configuration as it is now: take it once per batch or request, not once per process."""
        if self._book is not None:
            return self._book
        view = self.config
        if not view.ready.is_set():
            raise ConfigUnavailable(f"the configuration ({view.topic}) is not loaded yet: is Kafka up?")
        return view.book

    @property
    def config_service(self):
        """The use case that changes the configuration (API, import), built once."""
        if self._config_service is None:
            from projections.redis_config import ConfigClaims
            from services.config_changes import ConfigService
            from streams.config_writer import ConfigWriter
            writer = ConfigWriter(self.settings.kafka_bootstrap, self.topic(CONFIG), self.topic(CONFIG_HISTORY),
                                  self.codec)
            self._config_service = ConfigService(self.config, writer, ConfigClaims(self.redis, self.topic(CONFIG)))
        return self._config_service

    @property
    def producer(self) -> AsyncProducer:
        if self._producer is None:
            self._producer = AsyncProducer(self.settings.kafka_bootstrap)
        return self._producer

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            # a blocking pool: past its size a request waits for a connection (at most 10 s)
            # instead of failing with "Too many connections" (redis-py's pools stop at 100)
            # a command on a connection Redis closed (restarted since the connection was last used:
            # the chaos drill saw a worker fail on one 6 s after the restart, and the API answer a
            # 503) is sent again on a new connection, at most twice; a timeout is not retried
            pool = aioredis.BlockingConnectionPool.from_url(
                self.settings.redis_url, **packed(self.settings.redis_url),
                max_connections=self.settings.redis_max_connections, timeout=10,
                socket_timeout=10, socket_connect_timeout=5,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2, supported_errors=(RedisConnectionError,)))
            self._redis = aioredis.Redis(connection_pool=pool)
        return self._redis

    def use_bulk_redis(self) -> None:
        """For a batch tool (the replay): Redis replies read without a timeout each (redis-py
        enters an asyncio timeout per reply: 20 % of a replay's CPU in py-spy); a stalled Redis
        stalls the tool, whose progress bar shows it, instead of failing it."""
        self._redis = aioredis.Redis.from_url(self.settings.redis_url, **packed(self.settings.redis_url),
                                              socket_timeout=None,
                                              socket_connect_timeout=5, socket_keepalive=True)

    @cached_property
    def lead_ids(self) -> LeadIds:
        """Lead ids of addresses: keyed hashes under this deployment's secret."""
        return LeadIds(self.settings.lead_id_secret)

    @property
    def leads(self) -> LeadStore:
        return LeadStore(self.redis)

    def send_batch(self):
        """A new sending use case (one per sender agent: it keeps job indexes)."""
        from runtime.sending import build_send_batch
        return build_send_batch(self)

    def trigger_engine(self):
        """The trigger engine over this process's Redis."""
        from runtime.triggering import build_trigger_engine
        return build_trigger_engine(self)

    def digest_store(self):
        """The digest pipeline's Redis state."""
        from projections.redis_digests import DigestStore
        return DigestStore(self.redis)

    def data_keys(self):
        """Leads' data keys (services/privacy/keys.py), one per process."""
        if self._data_keys is None:
            from projections.redis_data_keys import DataKeyStore
            from services.privacy.keys import DataKeys
            from streams.topics import DATA_KEYS
            self._data_keys = DataKeys(DataKeyStore(self.redis), self.producer, self.codec, self.topic(DATA_KEYS),
                                       self.settings.kek_ring)
        return self._data_keys

    def sealer(self):
        """Events' personal fields sealed and opened with leads' data keys (one per process)."""
        if self._sealer is None:
            from services.privacy.sealer import Sealer
            self._sealer = Sealer(self.data_keys())
        return self._sealer

    def do_not_contact(self):
        """The tenants' do-not-contact lists (erased people)."""
        from projections.redis_erasure import DoNotContact
        return DoNotContact(self.redis, self.settings.privacy_hash_secret)

    def consent_store(self):
        """Each lead's current consent (the consent ledger's projection)."""
        from projections.redis_consent import ConsentStore
        return ConsentStore(self.redis)

    def conversions(self):
        """Conversion attribution (people's last clicks, goal events)."""
        from runtime.triggering import build_conversions
        return build_conversions(self)

    def experiment_looks(self):
        """The use case that looks at experiments and records the looks."""
        from runtime.experiments import build_experiment_looks
        return build_experiment_looks(self)

    def recommender_training(self):
        """The use case that trains the brands' recommenders."""
        from runtime.recommendations import build_recommender_training
        return build_recommender_training(self)

    def topic(self, name: str) -> str:
        return f"{self.settings.topic_prefix}{name}"

    async def on_clickhouse(self, query, *args):
        """query(client, *args) off the event loop, on a connection of its own (closed after)."""
        def run():
            client = self.clickhouse()
            try:
                return query(client, *args)
            finally:
                client.disconnect()
        return await asyncio.to_thread(run)

    def clickhouse(self):
        from projections.clickhouse import connect
        s = self.settings
        return connect(s.clickhouse_host, s.clickhouse_port)


def build(settings: Settings, book: TenantBook | None = None) -> Deps:
    """The dependencies of a process; the configuration comes from the configuration topic
    unless a fixed book is given (tests of one function, tools that read a file)."""
    return Deps(settings, default_codec(), book)
