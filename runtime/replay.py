"""Rebuild the projections from the topics: python -m runtime.replay [--redis] [--clickhouse]

Redis: every lead's read model is folded again from leads.events (with domain.intake.evolve,
the same function the live agent uses) and the opt-out sets from lead.unsubscribed events; the
trigger engine's histories, segment membership, cooldowns, caps and pending timers from the
events it reads and the ones it wrote (runtime/replay_triggers.py).
ClickHouse: the database is dropped, migrated again and refilled from every topic.
Run it with the workers stopped (`./dev replay` does that for you).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import sys
import threading
import time
from contextlib import contextmanager
from queue import Empty
from datetime import datetime, timezone
from typing import Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from domain.intake import LeadState, evolve
from domain.validation import suppression_entries
from projections.clickhouse import EventsWriter, migrate
from projections.config_rows import CONFIG_COLUMNS, config_row
from projections.event_rows import event_row
from projections.redis_bulk import set_all
from projections.redis_keys import INTACT
from projections.redis_leads import lead_key, optout_key
from schemas.codec import DecodeError
from streams.settings import get_settings
from agents.analytics import TOPICS as ANALYTICS_TOPICS
from domain.planning import schedule_for
from domain.schedule import DEFAULT_TIMEZONE, local_date
from projections.redis_schedule import Schedule
from streams.topics import CONFIG_HISTORY, LEAD_EVENTS
from runtime.deps import Deps, build
from runtime.replay_consent import PREFIXES as CONSENT_PREFIXES, AcceptedConsents, rebuild_consent
from runtime.replay_crm_emptying import rebuild_crm_emptying
from runtime.replay_data_keys import PREFIXES as DATA_KEY_PREFIXES, rebuild_data_keys, topic_keys
from runtime.replay_erasures import (PREFIXES as ERASURE_PREFIXES, anonymise_erased, leave_out, read_erasures,
                                     rebuild_erasures)
from runtime.replay_digests import PREFIXES as DIGEST_PREFIXES, rebuild_digests
from runtime.replay_forget import forget
from runtime.replay_triggers import PREFIXES as TRIGGER_PREFIXES, rebuild_triggers
from runtime.replay_engagement import LastSeen, rebuild_engagement
from runtime.replay_intake import SourceCounts
from runtime.replay_jobs import rebuild_jobs
from runtime.replay_observed import rebuild_observed
from runtime.replay_sends import rebuild_sends

import orjson

LEAD_PREFIXES = ("ls:lead:", "ls:due:")  # the read models and the planner's schedule
# every family the Redis rebuild deletes and writes again
FORGOTTEN = (*LEAD_PREFIXES, *TRIGGER_PREFIXES, *DIGEST_PREFIXES, *CONSENT_PREFIXES, *DATA_KEY_PREFIXES,
             *ERASURE_PREFIXES)


def read_topics(deps: Deps, topics: list[str], with_keys: bool = False) -> tuple[int, Iterator[tuple]]:
    """(message count, iterator of (topic, partition, offset, value)) from the start of the
    topics to their end offsets as of now; with_keys: of (key, value) (a compacted topic's)."""
    c = Consumer({"bootstrap.servers": deps.settings.kafka_bootstrap, "group.id": "leadstream-replay",
                  "enable.auto.commit": False, "enable.partition.eof": True, "isolation.level": "read_committed"})
    parts, ends, total = [], {}, 0
    for t in topics:
        md = c.list_topics(t, timeout=10).topics[t]
        for p in md.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)
            if hi > lo:
                parts.append(TopicPartition(t, p, OFFSET_BEGINNING))
                ends[(t, p)] = hi
                total += hi - lo

    def messages() -> Iterator[tuple]:
        c.assign(parts)
        left = dict(ends)
        try:
            while left:
                for m in c.consume(10000, timeout=1.0):
                    key = (m.topic(), m.partition())
                    if m.error():
                        # at the end (a transactional topic ends with a marker that is never read)
                        if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= left.get(key, 0):
                            left.pop(key, None)
                        continue
                    if key not in left or m.offset() >= left[key]:
                        continue
                    yield (m.key(), m.value()) if with_keys else (m.topic(), m.partition(), m.offset(), m.value())
                    if m.offset() + 1 >= left[key]:
                        del left[key]
        finally:
            c.close()
    return total, messages()


def fold_leads(deps: Deps, messages: Iterator[tuple], tick: Callable[[int], None],
               also: Callable[[str, dict], None] = lambda name, ev: None,
               opened: Callable[[str, dict], dict] = lambda name, ev: ev
               ) -> tuple[dict[tuple[str, str], LeadState], set[tuple[str, str]], int]:
    """Every lead's state and the opt-outs, from lead events in topic order, their sealed fields
    `opened` (each event also handed to `also`)."""
    states: dict[tuple[str, str], LeadState] = {}
    optouts: set[tuple[str, str]] = set()
    bad = 0
    for _, _, _, value in messages:
        tick(1)
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError:
            bad += 1
            continue
        ev = opened(name, ev)
        also(name, ev)
        k = (ev["tenant"], ev["lead_id"])
        st = evolve(states.get(k), name, ev)
        if st is not None:
            states[k] = st
        if name == "lead.unsubscribed" and ev["address"]:  # None: sealed with a destroyed key
            optouts.add((ev["tenant"], ev["address"]))
        elif name == "lead.resubscribed" and ev["address"]:
            optouts.discard((ev["tenant"], ev["address"]))
    return states, optouts, bad


async def write_redis(deps: Deps, states: dict, optouts: set, chunk: int = 5000, forgotten: bool = False) -> None:
    r = deps.redis
    if not forgotten:
        await forget(r, LEAD_PREFIXES)
    await set_all(r, [(lead_key(st.tenant, st.lead_id), orjson.dumps(st)) for st in states.values()])
    by_tenant: dict[str, list[str]] = {}
    for tenant, address in optouts:
        by_tenant.setdefault(tenant, []).append(address)
    for tenant, addresses in by_tenant.items():
        for i in range(0, len(addresses), chunk):
            await r.sadd(optout_key(tenant), *addresses[i:i + chunk])
    await write_schedule(deps, states)


async def write_schedule(deps: Deps, states: dict, chunk: int = 5000) -> None:
    """The planner's schedule again (write_redis forgot the old one), from the folded states:
    every list of every accepted lead at its next instant from now (what was already sent today
    is kept by the sender's marks, so nothing goes twice)."""
    r, now_ms = deps.redis, int(time.time() * 1000)
    entries = []
    for st in states.values():
        tenant = deps.tenants.tenants.get(st.tenant)
        if tenant is not None:
            entries.append((st.tenant, schedule_for(st, tenant, now_ms), []))
        if len(entries) >= chunk:
            await Schedule(r).set_entries(entries)
            entries = []
    await Schedule(r).set_entries(entries)


def local_date_of(book, states: dict) -> Callable[[dict], str]:
    """The lead's local date of a send, as the planner named it (the lead's zone, else its list's)."""
    def of(d: dict) -> str:
        st, tenant = states.get((d["tenant"], d["lead_id"])), book.tenants.get(d["tenant"])
        lst = tenant.lists.get(d["list"]) if tenant else None
        at = d["occurred_at"]
        at_ms = int(at.timestamp() * 1000) if isinstance(at, datetime) else int(at)
        return local_date(at_ms, st.timezone if st else None, default_tz=lst.timezone if lst else DEFAULT_TIMEZONE)
    return of


class Ticks:
    """A progress task per name, advanced every EVERY messages and at its total (a rich
    advance per message cost more than decoding it)."""
    EVERY = 2000

    def __init__(self, progress, prefix: str):
        self.progress, self.prefix = progress, prefix
        self.tasks: dict[str, object] = {}
        self.counts: dict[str, list[int]] = {}  # name -> [counted, not yet shown]

    def __call__(self, what: str, n: int, of: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(f"{self.prefix}{what}", total=of)
            self.counts[what] = [0, 0]
        c = self.counts[what]
        c[0] += n
        c[1] += n
        if c[1] >= self.EVERY or c[0] >= of:
            self.progress.advance(self.tasks[what], c[1])
            c[1] = 0


def rebuild_redis(deps: Deps, progress: Progress) -> dict:
    started = time.monotonic()
    total, msgs = read_topics(deps, [deps.topic(LEAD_EVENTS)])
    tick = Ticks(progress, "redis: ")
    last_seen, sources = LastSeen(), SourceCounts(deps.tenants, int(time.time() * 1000))
    consents = AcceptedConsents()

    def also(name: str, ev: dict) -> None:
        last_seen.fold(name, ev)
        sources.fold(name, ev)
        consents.fold(name, ev)
    keys = topic_keys(deps, read_topics)
    states, optouts, bad = fold_leads(deps, msgs, lambda n: tick("folding leads.events", n, total), also, keys.open)
    erased = read_erasures(deps, read_topics)
    left_out = leave_out(erased, states, optouts)

    seconds = {"leads_folded": round(time.monotonic() - started, 1)}

    async def timed(what: str, work):
        t0 = time.monotonic()
        out = await work
        seconds[what] = round(time.monotonic() - t0, 1)
        return out

    async def write() -> dict:
        await timed("forgotten", forget(deps.redis, FORGOTTEN))  # one pass for every family rebuilt
        await timed("leads_written", write_redis(deps, states, optouts, forgotten=True))
        await deps.leads.sync_blocklist(suppression_entries(deps.tenants.blocklist))
        source_counts = await sources.write(deps.redis)
        now = lambda: int(time.time() * 1000)  # noqa: E731
        marks = await timed("sends", rebuild_sends(deps, read_topics, tick, local_date_of(deps.tenants, states)))
        marks |= await timed("jobs", rebuild_jobs(deps, read_topics, tick))
        marks |= await timed("observed", rebuild_observed(deps, read_topics, tick, now()))
        marks |= await timed("engagement", rebuild_engagement(deps, read_topics, tick, last_seen, states, now()))
        triggers = {**await timed("triggers", rebuild_triggers(deps, states, read_topics, tick, keys.open,
                                                                  forgotten=True)), **marks}
        triggers |= await timed("digests", rebuild_digests(deps, read_topics, tick, forgotten=True))
        triggers |= await timed("consent", rebuild_consent(deps, read_topics, tick, consents, forgotten=True))
        triggers |= await timed("data_keys", rebuild_data_keys(deps, read_topics, tick, forgotten=True))
        triggers |= await timed("crm_emptying", rebuild_crm_emptying(deps, read_topics, tick))
        triggers |= await timed("erasures", rebuild_erasures(deps, erased, forgotten=True))
        await deps.redis.set(INTACT, "replay")  # the tracking front's misses are 404s again
        return {**triggers, "source_counts": source_counts}
    triggers = asyncio.run(write())
    return {"events": total, "leads": len(states), "opt_outs": len(optouts), "undecodable": bad,
            "erased_left_out": left_out, **triggers, "seconds": seconds}


def rebuild_clickhouse(deps: Deps, progress: Progress, batch: int = 50_000) -> dict:
    s, started = deps.settings, time.monotonic()
    client = deps.clickhouse()
    client.execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
    migrate(client, s.clickhouse_database)
    total, msgs = read_topics(deps, [deps.topic(t) for t in ANALYTICS_TOPICS])
    task = progress.add_task("clickhouse: inserting every event", total=total)
    writer = EventsWriter(client, s.clickhouse_database)
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    rows = bad = 0
    for topic, partition, offset, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError:
            bad += 1
            continue
        writer.submit(event_row(name, ev, topic, partition, offset, now))
        if len(writer.rows) >= batch:
            progress.advance(task, len(writer.rows))
            rows += writer.flush()
    progress.advance(task, len(writer.rows))
    rows += writer.flush()
    progress.update(task, completed=total)
    history = rebuild_config_history(deps, client, progress)
    anonymised = anonymise_erased(deps, client, read_erasures(deps, read_topics))
    return {"events": total, "rows": rows, "undecodable": bad, "config_changes": history,
            "erased_rows_anonymised": anonymised,
            "seconds": round(time.monotonic() - started, 1)}


def rebuild_config_history(deps: Deps, client, progress: Progress, batch: int = 10_000) -> int:
    """The audit log again, from config.history (read committed: an aborted change never counts)."""
    total, msgs = read_topics(deps, [deps.topic(CONFIG_HISTORY)])
    task = progress.add_task("clickhouse: the configuration history", total=total)
    table = f"{deps.settings.clickhouse_database}.config_history"
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    rows: list[tuple] = []
    written = 0
    for _topic, _partition, _offset, value in msgs:
        try:
            name, ev = deps.codec.decode(value or b"")
        except DecodeError:
            continue
        rows.append(config_row(name, ev, now))
        if len(rows) >= batch:
            written += _insert_config(client, table, rows)
            progress.advance(task, len(rows))
            rows = []
    written += _insert_config(client, table, rows)
    progress.update(task, completed=total)
    return written


def _insert_config(client, table: str, rows: list[tuple]) -> int:
    if rows:
        client.execute(f"INSERT INTO {table} ({', '.join(CONFIG_COLUMNS)}) VALUES", list(zip(*rows)), columnar=True)
    return len(rows)


@contextmanager
def young_collections_only():
    """Python's full garbage collections off for a while, the young ones kept. A rebuild holds
    millions of live objects (every lead's state, every send) and keeps allocating; each full
    collection walks all of them, and they came often enough to cost a sixth of the replay
    (measured: 58.8 s with them, 48.3 s without, on the replay benchmark's 1 M events). A cycle
    that lives long enough to be old is freed when the rebuild is over."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


def run_replay(deps: Deps, progress, redis: bool = True, clickhouse: bool = True) -> dict:
    """Rebuild what is asked; both at once when both are (ClickHouse in a child process: the two
    share nothing but the topics, and on two cores they overlap instead of queueing)."""
    with young_collections_only():
        if redis and clickhouse:
            return _both(deps, progress)
        results = {}
        if redis:
            results["redis"] = rebuild_redis(deps, progress)
        if clickhouse:
            results["clickhouse"] = rebuild_clickhouse(deps, progress)
        return results


class _SharedProgress:
    """The child's progress, counted into integers shared with the parent, which shows them."""

    def __init__(self, done, total):
        self.done, self.total, self._advanced = done, total, {}

    def add_task(self, description: str, total: int | None = None) -> str:
        with self.total.get_lock():
            self.total.value += total or 0
        self._advanced[description] = 0
        return description

    def advance(self, task: str, n: int) -> None:
        self._advanced[task] += n
        with self.done.get_lock():
            self.done.value += n

    def update(self, task: str, completed: int | None = None) -> None:
        if completed is not None:
            self.advance(task, completed - self._advanced[task])


def _clickhouse_child(settings, done, total, results) -> None:
    with young_collections_only():
        results.put(rebuild_clickhouse(build(settings), _SharedProgress(done, total)))


def _both(deps: Deps, progress) -> dict:
    ctx = multiprocessing.get_context("spawn")
    done, total, queue = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Queue()
    child = ctx.Process(target=_clickhouse_child, args=(deps.settings, done, total, queue), name="replay-clickhouse")
    child.start()
    task = progress.add_task("clickhouse: every event, the history", total=None)
    stop = threading.Event()

    def mirror() -> None:
        while not stop.wait(0.2):
            progress.update(task, completed=done.value, total=total.value or None)
    threading.Thread(target=mirror, name="replay-progress", daemon=True).start()
    results: dict = {}
    try:
        results["redis"] = rebuild_redis(deps, progress)
        results["clickhouse"] = _result_of(child, queue)
        child.join()
    finally:
        stop.set()
        if child.is_alive() and "clickhouse" not in results:
            child.terminate()  # the Redis side failed: the operator runs the replay again
    progress.update(task, completed=done.value, total=total.value)
    return results


def _result_of(child, queue) -> dict:
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            if not child.is_alive() and queue.empty():
                raise SystemExit(f"the ClickHouse rebuild failed (exit {child.exitcode}): its error is above")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis", action="store_true", help="rebuild the Redis read models")
    ap.add_argument("--clickhouse", action="store_true", help="rebuild the ClickHouse tables")
    args = ap.parse_args(argv)
    both = not (args.redis or args.clickhouse)
    deps = build(get_settings())
    deps.use_bulk_redis()
    t0 = time.monotonic()
    with Progress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as progress:
        results = run_replay(deps, progress, args.redis or both, args.clickhouse or both)
    for what, r in results.items():
        print(f"{what:<11} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    print(f"replay done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
