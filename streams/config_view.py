"""The configuration a process holds: read from the compacted configuration topic, kept current.

On start a view reads the topic from the beginning up to its end (so a process never serves
with half a configuration), then a background thread goes on reading: a change made anywhere
is applied here within a poll interval, without a restart. Readers take `view.book`, an
immutable TenantBook swapped whole on every change; its `version` says which one it is.
Reads are read_committed: a change is seen only once its transaction (compacted + history)
committed.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from domain.config_book import compile_book
from domain.config_changes import Entity, evolve, live_entities
from domain.tenants import TenantBook
from schemas.codec import Codec, DecodeError
from streams import metrics

log = logging.getLogger("leadstream.config")
POLL_S = 0.1


class ConfigUnavailable(RuntimeError):
    """The configuration topic cannot be read (Kafka down, topic missing)."""


class ConfigView:
    """The current configuration of this process, from the compacted topic."""

    def __init__(self, bootstrap: str, topic: str, codec: Codec):
        self.bootstrap, self.topic, self.codec = bootstrap, topic, codec
        self.state: dict[str, Entity] = {}
        self.book: TenantBook = compile_book({}, 0)
        self.position = 0  # the next offset to read (transaction markers included)
        self.applied = 0  # one past the last change applied: the book's version, the same in every process
        self.last_applied_ms = 0
        self._cond = threading.Condition()
        self._listeners: list[Callable[[TenantBook], None]] = []
        self._consumer: Consumer | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self.ready = threading.Event()

    # -- starting and stopping ------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> "ConfigView":
        """Read the topic up to its current end, then keep reading in the background."""
        if self._thread is not None:
            return self
        self._catch_up(timeout_s)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="config-view", daemon=True)
        self._thread.start()
        return self

    def start_in_background(self) -> "ConfigView":
        """Like start, but never blocks: a process that must serve without Kafka (the tracking
        front) starts with an empty book and catches up when Kafka answers."""
        if self._thread is not None:
            return self
        self._running = True

        def run() -> None:
            while self._running and not self.ready.is_set():
                try:
                    self._catch_up(30.0)
                except Exception as exc:
                    log.warning("configuration not loaded yet, retrying: %s", exc)
                    self._close_consumer()
                    time.sleep(2)
            self._run()
        self._thread = threading.Thread(target=run, name="config-view", daemon=True)
        self._thread.start()
        return self

    def _catch_up(self, timeout_s: float) -> None:
        self._consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"leadstream-config-view-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "isolation.level": "read_committed",
            "enable.partition.eof": True, "fetch.wait.max.ms": 50, "socket.timeout.ms": 10000,
        })
        end = self._end_offset(timeout_s)
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout_s
        while self.position < end:
            if time.monotonic() > deadline:
                raise ConfigUnavailable(f"read only to offset {self.position} of {end} on {self.topic} "
                                        f"in {timeout_s:.0f}s")
            self._poll(end_seen=lambda: self._at_end(end))
        self._swap(0)
        self.ready.set()
        log.info("configuration loaded: %d entities, version %d", len(self.state), self.book.version)

    def _close_consumer(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:
                pass
            self._consumer = None

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._close_consumer()

    def _end_offset(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                md = self._consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                if md is None or md.error is not None:
                    raise ConfigUnavailable(f"configuration topic {self.topic} does not exist: "
                                            f"./dev up (or python -m runtime.bootstrap) creates it")
                return self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=5)[1]
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise ConfigUnavailable(f"cannot reach Kafka at {self.bootstrap} to read "
                                            f"{self.topic}: {exc}") from exc
                time.sleep(0.5)

    def _at_end(self, end: int) -> None:
        # transaction markers take offsets too: at the partition's end we hold everything
        self.position = max(self.position, end)

    # -- reading --------------------------------------------------------------------------

    def _run(self) -> None:
        while self._running:
            try:
                self._poll()
            except Exception:  # never let the view die: the process would run on a stale book
                metrics.CONFIG_ERRORS.inc()
                log.exception("configuration view: poll failed; retrying")
                time.sleep(1)

    def _poll(self, end_seen: Callable[[], None] | None = None) -> None:
        msgs = self._consumer.consume(1000, timeout=POLL_S)
        changed, latest_ms = False, 0
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self.position = max(self.position, m.offset())
                    if end_seen is not None:
                        end_seen()
                    continue
                raise ConfigUnavailable(f"reading {self.topic}: {err}")
            try:
                _name, ev = self.codec.decode(m.value() or b"")
            except DecodeError as exc:
                metrics.CONFIG_ERRORS.inc()
                log.error("configuration event at offset %d is undecodable, skipped: %s", m.offset(), exc)
            else:
                with self._cond:
                    evolve(self.state, ev)
                latest_ms = max(latest_ms, _ms(ev["occurred_at"]))
                changed = True
            self.position = max(self.position, m.offset() + 1)
            self.applied = m.offset() + 1
        if changed:
            self._swap(latest_ms)
        elif msgs:
            with self._cond:
                self._cond.notify_all()

    def snapshot(self) -> dict[str, Entity]:
        """A copy of the current entity states (safe to use while the view reads on)."""
        with self._cond:
            return dict(self.state)

    def _swap(self, latest_ms: int) -> None:
        try:
            book = compile_book(live_entities(self.snapshot()), self.applied)
        except Exception:
            metrics.CONFIG_ERRORS.inc()
            log.exception("the configuration at offset %d does not compile; keeping version %d",
                          self.applied, self.book.version)
            return
        with self._cond:
            self.book = book
            self.last_applied_ms = latest_ms
            self._cond.notify_all()
        metrics.CONFIG_VERSION.set(book.version)
        if latest_ms:
            metrics.CONFIG_APPLY_SECONDS.observe(max(time.time() - latest_ms / 1000, 0))
        for listener in list(self._listeners):
            try:
                listener(book)
            except Exception:
                log.exception("configuration listener failed")

    # -- waiting and listening -------------------------------------------------------------

    def wait_for(self, offset: int, timeout_s: float = 10.0) -> bool:
        """Block until the change at `offset` is applied (position past it); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.position <= offset:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, POLL_S))
        return True

    def on_change(self, listener: Callable[[TenantBook], None]) -> None:
        """Call listener(book) (in the view's thread) after every change."""
        self._listeners.append(listener)


def _ms(ts) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)


_views: dict[tuple[str, str], ConfigView] = {}
_views_lock = threading.Lock()


def shared_view(bootstrap: str, topic: str, codec: Codec, timeout_s: float = 60.0,
                wait: bool = True) -> ConfigView:
    """The process's one view of this topic, started on first use (wait=False: in the background)."""
    with _views_lock:
        view = _views.get((bootstrap, topic))
        if view is None:
            view = ConfigView(bootstrap, topic, codec)
            view.start(timeout_s) if wait else view.start_in_background()
            _views[(bootstrap, topic)] = view
        elif wait and not view.ready.is_set():
            if not view.ready.wait(timeout_s):
                raise ConfigUnavailable(f"the configuration ({topic}) is not loaded yet")
        return view


def current_book(settings):
    """The configuration as the platform holds it now, for one-off commands (reports, tools)."""
    from schemas.codec import default_codec
    from streams.topics import CONFIG
    return shared_view(settings.kafka_bootstrap, f"{settings.topic_prefix}{CONFIG}", default_codec()).book
