"""The digest use cases: keep activity and memberships, plan due runs, digest a chunk of members.

Planning (one run per digest, time zone and period): the zone's members are snapshotted in
Redis once (recently seen ones on the priority path, the rest on the standard path, inactive
members of a large run left out and counted), cut into chunks, and each chunk is produced as a
work item. Digesting a chunk reads only its members (a fixed number), their groups and each
group's window of top items (cached), and requests one digest per member with something new.

At most one digest per member and period: its send id is fixed by (digest, member, period), so
a chunk digested twice (a redelivery, two planners, a worker killed mid-chunk) asks twice for
the same send id and the sender delivers it once. A chunk settled in Redis is not digested again,
and settling counts each chunk once in its run's totals.
"""
from __future__ import annotations

import asyncio
import os
import socket
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from domain.digests import (DigestConfig, Item, Period, chunks_of, cutoffs, digest_context, due, group_top,
                            hour_buckets, latest_period, local_day_of, run_id, send_request, top_items)
from domain.identity import derived_event_id
from domain.schedule import DEFAULT_TIMEZONE
from domain.schema_labels import schema_label
from projections.redis_digests import DigestStore, RunHealth

SOURCE = "agent:digests"
CHUNK_SIZE = 1000
WINDOW_CACHE = 256  # groups' windows kept by a worker (each at most top_k x hours items)
PRIORITY_WAIT_S = 60.0  # the standard path waits this long at most for a run's priority chunks


@dataclass
class Out:
    """What one step produced: (role, key, event name, event), role = priority / standard /
    events / sends; and counts for the metrics."""

    records: list[tuple[str, str, str, dict]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)  # runs planned: marked once their records are acknowledged

    def add(self, role: str, key: str, name: str, ev: dict) -> None:
        self.records.append((role, key, name, ev))

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def _envelope(name: str, tenant: str, event_id: str, now_ms: int, causation: str | None, **fields) -> dict:
    return {"event_id": event_id, "tenant": tenant, "occurred_at": now_ms, "schema": schema_label(name),
            "causation_id": causation, "source": SOURCE, **fields}


class ActivityKeeper:
    """activity.posted / joined / left and people seen (opens, clicks, product events) -> Redis."""

    def __init__(self, store: DigestStore, lead_timezones):
        self.store = store
        self.lead_timezones = lead_timezones  # async (tenant, [lead]) -> [tz or None] from the lead read models

    async def keep(self, batch: list[tuple[str, dict]], book) -> int:
        """Applies a batch in order; returns how many events it applied."""
        items: dict[str, list[Item]] = {}
        changes: dict[str, list] = {}
        # a join without a zone takes the lead's own, else the platform's default
        joins = [(ev["tenant"], ev["lead_id"]) for name, ev in batch if name == "activity.joined" and not ev.get("timezone")]
        zones = await self._zones_of(joins)
        for name, ev in batch:
            t = ev["tenant"]
            at = ms_of(ev["occurred_at"])
            if name == "activity.posted":
                posted = ms_of(ev["posted_at"])
                items.setdefault(t, []).append(Item(ev["item_id"], ev["group_id"], float(ev["score"]), posted,
                                                    ev["title"], ev["url"], ev.get("author_lead_id") or ""))
                if ev.get("author_lead_id"):
                    changes.setdefault(t, []).append(("seen", ev["author_lead_id"], "", "", "", posted))
            elif name == "activity.joined":
                tz = ev.get("timezone") or zones.get((t, ev["lead_id"])) or DEFAULT_TIMEZONE
                changes.setdefault(t, []).append(("join", ev["lead_id"], ev["group_id"], ev["group_kind"], tz, at))
            elif name == "activity.left":
                changes.setdefault(t, []).append(("leave", ev["lead_id"], ev["group_id"], "", "", at))
            elif ev.get("lead_id"):
                changes.setdefault(t, []).append(("seen", ev["lead_id"], "", "", "", at))
        for t, its in items.items():
            await self.store.post_items(t, its)
        for t, ch in changes.items():
            await self.store.change_memberships(t, ch)
        return len(batch)

    async def _zones_of(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not keys:
            return {}
        zones = await self.lead_timezones(keys)
        return {k: z for k, z in zip(keys, zones) if z}


class DigestPlanner:
    """Finds the runs that are due and plans each once."""

    def __init__(self, store: DigestStore, chunk_size: int = CHUNK_SIZE):
        self.store = store
        self.chunk_size = chunk_size
        self.health = RunHealth(store.r)

    async def plan_due(self, book, now_ms: int) -> Out:
        out = Out()
        for tenant in book.tenants.values():
            for digest, cfg in sorted(tenant.digests.items()):
                if not cfg.enabled:
                    continue
                first_seen = (await self.health.seen_since(tenant.id)).get(digest)
                for tz in await self.store.zones(tenant.id):
                    period = latest_period(cfg, tz, now_ms)
                    if due(cfg, period, now_ms):
                        await self._plan(out, tenant.id, digest, cfg, tz, period, now_ms)
                    elif first_seen is not None and first_seen <= period.send_at_ms:
                        await self._missed(out, tenant.id, digest, tz, period, now_ms)
        return out

    async def _missed(self, out: Out, tenant: str, digest: str, tz: str, period: Period, now_ms: int) -> None:
        """A period past its catch-up with no run (the planner was down, or failing): told once."""
        run = run_id(tenant, digest, tz, period.key)
        members = await self.store.people_count(tenant, tz)
        if await self.store.mark_missed(run, {"missed_at": now_ms, "tenant": tenant, "digest": digest,
                                              "timezone": tz, "period": period.key, "send_at": period.send_at_ms}):
            out.add("events", run, "digest.run_missed", _envelope(
                "digest.run_missed", tenant, derived_event_id(run, "missed", period.send_at_ms), now_ms, None,
                run=run, digest=digest, timezone=tz, period=period.key, send_at=period.send_at_ms, members=members,
                reason="not_planned_in_time"))
            out.count("runs_missed")

    async def _plan(self, out: Out, tenant: str, digest: str, cfg: DigestConfig, tz: str, period: Period,
                    now_ms: int) -> None:
        run = run_id(tenant, digest, tz, period.key)
        held = await self.store.run(run)
        if held.get("produced"):
            return
        members = await self.store.people_count(tenant, tz)
        cut = cutoffs(cfg, members, now_ms)
        plan = held or await self.store.plan(run, tenant, tz, cut.priority_from_ms, cut.active_from_ms, {
            "tenant": tenant, "digest": digest, "timezone": tz, "period": period.key,
            "send_at": period.send_at_ms, "window_start": period.window_start_ms, "planned_at": now_ms})
        pri, std = int(plan["priority"]), int(plan["standard"])
        chunks = chunks_of("priority", pri, self.chunk_size) + chunks_of("standard", std, self.chunk_size)
        if not held.get("chunks"):
            await self.store.set_chunks(run, len(chunks), sum(1 for c in chunks if c.path == "priority"))
        for c in chunks:
            ev = _envelope("digest.chunk_requested", tenant, derived_event_id(run, f"chunk/{c.path}/{c.index}",
                                                                              period.send_at_ms),
                           now_ms, run, run=run, digest=digest, timezone=tz, period=period.key,
                           send_at=period.send_at_ms, window_start=period.window_start_ms, path=c.path,
                           chunk=c.index, start=c.start, stop=c.stop)
            out.add(c.path, run, "digest.chunk_requested", ev)
        out.add("events", run, "digest.planned", _envelope(
            "digest.planned", tenant, derived_event_id(run, "planned", period.send_at_ms), now_ms, None, run=run,
            digest=digest, timezone=tz, period=period.key, send_at=period.send_at_ms, priority=pri, standard=std,
            left_out=int(plan["left_out"]), chunks=len(chunks)))
        if not chunks:  # nobody to digest (or every member left out): the run ends as it is planned
            out.add("events", run, "digest.run_finished", _envelope(
                "digest.run_finished", tenant, derived_event_id(run, "finished", period.send_at_ms), now_ms, None,
                run=run, digest=digest, timezone=tz, period=period.key, send_at=period.send_at_ms, members=0,
                requested=0, items=0, nothing_new=0, outside_segment=0, left_out=int(plan["left_out"]), priority_done_at=None))
        out.count("runs_planned")
        out.count("members_left_out", int(plan["left_out"]))
        out.runs.append(run)

    async def after_produce(self, out: Out, now_ms: int) -> None:
        """Runs whose chunks are acknowledged are not planned again."""
        for run in out.runs:
            await self.store.mark_run(run, "produced", now_ms)
            h = await self.store.run(run)
            await self.health.opened(h["tenant"], h["digest"], run, int(h["send_at"]))
            if int(h.get("chunks") or 0) == 0:
                await self.store.mark_run(run, "finished_at", now_ms)
                await self.health.closed(h["tenant"], h["digest"], run, now_ms)

    async def watch(self, book, now_ms: int) -> list[tuple[str, str, str, float, float]]:
        """(tenant, digest, cadence, seconds its oldest open run is past its send time, when its
        last run finished in s) for every enabled digest: what the run alerts read."""
        out = []
        for tenant in book.tenants.values():
            if not tenant.digests:
                continue
            opened, last = await self.health.of(tenant.id)
            for digest, cfg in sorted(tenant.digests.items()):
                if not cfg.enabled:
                    continue
                if digest not in last:
                    await self.health.first_seen(tenant.id, digest, now_ms)
                late = max(now_ms - opened[digest], 0) / 1000 if digest in opened else 0.0
                out.append((tenant.id, digest, cfg.cadence, late, last.get(digest, now_ms) / 1000))
        return out


@dataclass
class ChunkOut(Out):
    run: str = ""
    path: str = ""
    index: int = -1
    settle: dict[str, int] | None = None  # the chunk's counts, once its records are acknowledged


class DigestComposer:
    """Digests one chunk of a run's members."""

    def __init__(self, store: DigestStore, segments, worker: str | None = None):
        self.store = store
        self.segments = segments  # async [(tenant, lead)] -> [[segment]] (projections.redis_segments)
        self.health = RunHealth(store.r)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._windows: OrderedDict[tuple, list[Item]] = OrderedDict()

    async def wait_for_priority(self, run: str, timeout_s: float = PRIORITY_WAIT_S, step_s: float = 0.2) -> None:
        """The standard path starts a run once its priority chunks are done (or after timeout_s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            h = await self.store.run(run)
            if int(h.get("priority_done") or 0) >= int(h.get("priority_chunks") or 0):
                return
            await asyncio.sleep(step_s)

    async def digest_chunk(self, req: dict, book, now_ms: int) -> ChunkOut:
        run, path, index = req["run"], req["path"], req["chunk"]
        out = ChunkOut(run=run, path=path, index=index)
        tenant = book.tenants.get(req["tenant"])
        cfg = tenant.digests.get(req["digest"]) if tenant else None
        if not await self.store.claim(run, path, index, self.worker, now_ms):  # done already
            out.count("chunks_skipped")
            return out
        counts = {"done_chunks": 1, f"{path}_done": 1, "members": 0, "requested": 0, "items": 0, "nothing_new": 0,
                  "outside_segment": 0}
        if cfg is None:  # the digest (or its brand) was deleted since the run was planned
            out.settle = counts
            return out
        period = Period(req["period"], ms_of(req["send_at"]), ms_of(req["window_start"]))
        members = await self.store.members(run, path, req["start"], req["stop"])
        leads = [lead for lead, _ in members]
        if cfg.segment:
            segs = await self.segments([(req["tenant"], lead) for lead in leads])
            counts["outside_segment"] = sum(1 for s in segs if cfg.segment not in s)
            leads = [lead for lead, s in zip(leads, segs) if cfg.segment in s]
        joined = await self.store.memberships(req["tenant"], leads)
        windows = await self._windows_of(req["tenant"], cfg, period, {g for j in joined for g in j})
        local_day = local_day_of(period.send_at_ms, req["timezone"])
        for lead, groups in zip(leads, joined):
            candidates = [it for g in groups for it in windows.get(g, ())]
            top = top_items(candidates, cfg.top_k, lead, groups)
            if not top:
                counts["nothing_new"] += 1
                continue
            context = orjson.dumps(digest_context(req["digest"], period, top)).decode()
            ev = send_request(req["tenant"], req["digest"], cfg, lead, "", period, top, run, local_day, now_ms, context)
            out.add("sends", lead, "send.requested", ev)
            counts["requested"] += 1
            counts["items"] += len(top)
        counts["members"] = len(members)
        started = now_ms
        out.add("events", run, "digest.chunk_done", _envelope(
            "digest.chunk_done", req["tenant"], derived_event_id(run, f"done/{path}/{index}", period.send_at_ms),
            now_ms, req["event_id"], run=run, digest=req["digest"], path=path, chunk=index, members=len(members),
            requested=counts["requested"], items=counts["items"], nothing_new=counts["nothing_new"],
            outside_segment=counts["outside_segment"], started_at=started,
            max_lateness_ms=max(now_ms - period.send_at_ms, 0)))
        out.settle = counts
        out.count("members", len(members))
        out.count("outside_segment", counts["outside_segment"])
        out.count("requested", counts["requested"])
        out.count("nothing_new", counts["nothing_new"])
        return out

    async def _windows_of(self, tenant: str, cfg: DigestConfig, period: Period, groups: set[str]) -> dict[str, list[Item]]:
        """Each group's candidates for the window: the top k of each of its hours (cached)."""
        wanted = sorted(groups)
        kinds = await self.store.group_kinds(tenant, [g for g in wanted if (tenant, g, period) not in self._windows])
        hours = hour_buckets(period.window_start_ms, period.window_end_ms)
        out = {}
        for g in wanted:
            key = (tenant, g, period)
            if key not in self._windows:
                ok = kinds.get(g) in cfg.group_kinds
                got = await self.store.window_items(tenant, g, hours, cfg.top_k) if ok else []
                self._windows[key] = group_top(got, cfg.top_k)
                while len(self._windows) > WINDOW_CACHE:
                    self._windows.popitem(last=False)
            else:
                self._windows.move_to_end(key)
            out[g] = self._windows[key]
        return out

    async def settle(self, out: ChunkOut, now_ms: int) -> Out:
        """After the chunk's records are acknowledged: its counts into the run (once), and the
        run's end when this was its last chunk."""
        done = Out()
        run = await (self.store.settle(out.run, out.path, out.index, out.settle) if out.settle is not None
                     else self.store.run(out.run))
        if run and int(run.get("priority_done") or 0) >= int(run.get("priority_chunks") or 0):
            await self.store.mark_run(out.run, "priority_done_at", now_ms)
            run = await self.store.run(out.run)
        if run and not run.get("finished_at") and int(run.get("done_chunks") or 0) >= int(run.get("chunks") or 1):
            done.add("events", out.run, "digest.run_finished", _envelope(
                "digest.run_finished", run["tenant"], derived_event_id(out.run, "finished", int(run["send_at"])),
                now_ms, None, run=out.run, digest=run["digest"], timezone=run["timezone"], period=run["period"],
                send_at=int(run["send_at"]), members=int(run.get("members") or 0),
                requested=int(run.get("requested") or 0), items=int(run.get("items") or 0),
                nothing_new=int(run.get("nothing_new") or 0),
                outside_segment=int(run.get("outside_segment") or 0), left_out=int(run.get("left_out") or 0),
                priority_done_at=int(run["priority_done_at"]) if run.get("priority_done_at") else None))
            done.count("runs_finished")
            done.runs.append(out.run)
        return done

    async def after_produce(self, done: Out, now_ms: int) -> None:
        """A run whose run_finished is acknowledged is finished (its end told once more at most)."""
        for run in done.runs:
            await self.store.mark_run(run, "finished_at", now_ms)
            h = await self.store.run(run)
            await self.health.closed(h["tenant"], h["digest"], run, now_ms)


def ms_of(ts) -> int:
    """Milliseconds of a decoded timestamp (a datetime) or of an int already in ms."""
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
