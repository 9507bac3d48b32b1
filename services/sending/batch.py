"""One batch of send requests, from request to provider and back to events.

screen (again, at send time) -> claim the send ids -> per-lead daily cap -> tenant and
provider rate limits -> pick jobs and compose -> store the tracked links -> deliver through
the list's provider chain -> settle the marks -> the events. Whatever cannot go now is
deferred to the retry topic with its not_before; nothing is dropped. The rules are in
domain/sending.py; what the batch needs from stores and providers is in ports.py.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, field

import orjson

from domain.experiments import arm_of_request
from domain.links import links_event
from domain.sending import (DAILY_CAPPED, MAX_ATTEMPTS, RESEND_JOBS_AFTER_MS, ALERT_KINDS, Verdict, after_mark,
                            backoff_ms, cap_key, is_reply, log_ids, may_go_without_jobs, over_cap, retried,
                            screen, screen_reply, send_event, sms_list_of, suppression_keys)
from services.sending.content import Draft, codes_needed, compose, template_label
from services.sending.job_picks import JobPicker
from services.sending.ports import SendingPorts
from services.sending.recommended import Recommender

log = logging.getLogger("leadstream.sending")


@dataclass
class Outbox:
    """What a batch produces: events for sends.events, requests for sends.retry."""

    events: list[tuple[str, dict]] = field(default_factory=list)
    retries: list[dict] = field(default_factory=list)


@dataclass
class Item:
    """One request on its way through the batch."""

    req: dict
    state: object = None
    tenant: object = None
    counted: bool = False
    message: object = None
    composed: object = None
    jobs: list = field(default_factory=list)
    new_keys: frozenset = frozenset()  # the jobs first seen since the lead's previous alert on the list
    matching: int = 0  # jobs that match at all (new or not): tells no_new_jobs from no_matching_jobs
    segments: list = field(default_factory=list)
    arm: object = None  # the experiment arm (domain.experiments.Arm) when the send is in one
    recommended: list = field(default_factory=list)  # (job, why): the recommendations block


@dataclass
class Unfinished:
    """What this process did in a batch attempt that failed midway (a transient error: Redis or
    Kafka down for a moment). run_batch retries the same batch in the same process, and the
    retry carries on from here instead of mistaking its own claims for another worker's (which
    would hold the sends for the lease and then report them failed with outcome unknown)."""

    claimed: set[str] = field(default_factory=set)  # send ids it claimed
    counted: dict[str, int] = field(default_factory=dict)  # send id -> its number of the day
    handed: dict[str, tuple[str, dict] | None] = field(default_factory=dict)  # given to a provider
    # -> the event of its answer, None while the answer is not known


class SendBatch:
    """The sending use case; holds what outlives a batch (the job indexes)."""

    def __init__(self, ports: SendingPorts):
        self.ports = ports
        self.state = ports.store
        self.picker = JobPicker(ports.jobs)
        self.recommender = Recommender(ports.recommender, ports.jobs) if ports.recommender else None
        # names this process's claims; the random part keeps a later process with a reused pid
        # from taking a dead one's claims for its own
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"
        self.unfinished = Unfinished()

    def twin(self) -> "SendBatch":
        """Another use case over the same ports, for a batch worked on at the same time: its own
        claims owner, Unfinished and batch's checked indexes; the job indexes and recommender
        models themselves shared (built once per process: tens of MB for a brand's jobs)."""
        other = SendBatch(self.ports)
        other.picker.indexes = self.picker.indexes
        other.recommender = self.recommender
        return other

    async def run(self, reqs: list[dict], now_ms: int) -> Outbox:
        """Process a batch of decoded send.requested events."""
        out = Outbox()
        book = self.ports.book()
        items = await self._screened(reqs, book, now_ms, out)
        items = await self._claimed(items, now_ms, out)
        items = await self._capped(items, out, now_ms)
        items = await self._rate_limited(items, now_ms, out)
        items = await self._composed(items, now_ms, out)
        await self._delivered(items, now_ms, out)
        self.unfinished = Unfinished()  # every effect of this batch is recorded
        return out

    # -- the steps ------------------------------------------------------------------------

    async def _screened(self, reqs: list[dict], book, now_ms: int, out: Outbox) -> list[Item]:
        leads = self.ports.leads
        states = await leads.get_many([(r["tenant"], r["lead_id"]) for r in reqs])
        found = await leads.lookup([(r["tenant"], r["lead_id"], suppression_keys(s.address if s else None, r))
                                    for r, s in zip(reqs, states)], with_consent=True)
        items = []
        for req, state, look in zip(reqs, states, found):
            tenant = book.tenants.get(req["tenant"])
            suppressed = look.blocklisted or look.opted_out
            if tenant and req["kind"] == "more_jobs" and not req["list"] and state is not None:
                req = {**req, "list": sms_list_of(state.lists, lambda n: getattr(tenant.lists.get(n), "channel", ""))}
            if not tenant:
                verdict = Verdict("skip", "unknown_tenant")
            elif is_reply(req):  # answering the person, even the STOP that just unsubscribed them
                verdict = screen_reply(req, state, look.blocklisted, now_ms)
            else:
                cfg = tenant.lists.get(req["list"])
                verdict = screen(req, state, suppressed, now_ms, cfg.effective_quiet_hours if cfg else None,
                                 consent_withdrawn=look.consent_withdrawn)
            if self._settled_now(verdict, req, now_ms, out):
                continue
            arm = arm_of_request(tenant.experiments, req) if tenant.experiments else None
            if arm is not None and arm.holdout:  # held out: the lead gets nothing, and that is its exposure
                out.events.append(send_event("send.skipped", req, now_ms, reason="holdout", **arm.fields()))
                continue
            items.append(Item(req, state, tenant, arm=arm))
        return items

    async def _claimed(self, items: list[Item], now_ms: int, out: Outbox) -> list[Item]:
        marks = await self.state.claim([i.req["send_id"] for i in items], self.owner, now_ms)
        kept, failed, answered, going = [], [], [], set()
        for item, mark in zip(items, marks):
            sid = item.req["send_id"]
            # claimed by this batch's earlier attempt (not by another copy of the request in this
            # batch: that one waits, as for any claim that is not its own)
            if (mark is not None and sid in self.unfinished.claimed and sid not in going
                    and _claimed_by(mark) == self.owner):
                if sid not in self.unfinished.handed:  # never given to a provider: it goes on
                    kept.append(item)
                    going.add(sid)
                    continue
                if self.unfinished.handed[sid] is not None:  # delivered or refused: only its record is missing
                    answered.append(self.unfinished.handed[sid])
                    out.events.append(self.unfinished.handed[sid])
                    going.add(sid)
                    continue
            verdict = after_mark(mark, now_ms, self.ports.policy.lease_ms)
            if verdict.action == "skip" and mark and b"|{" in mark:
                out.events.append(_stored_event(mark))  # re-emit what the first attempt recorded
                continue
            if verdict.action == "fail":
                log.error("send %s: a worker died mid-send; outcome unknown, not sent again",
                          item.req["send_id"], extra=log_ids(item.req))
                ev = send_event("send.failed", item.req, now_ms, provider="", reason="outcome_unknown",
                                error="a worker died between claiming this send and recording the provider's answer")
                out.events.append(ev)
                failed.append((item.req["send_id"], ev))
                continue
            if not self._settled_now(verdict, item.req, now_ms, out):
                kept.append(item)
                going.add(sid)
        self.unfinished.claimed |= going
        if failed:
            await self.state.settle([], [], failed)
        if answered:
            await self.state.settle_and_record(
                [(ev["send_id"], (n, ev)) for n, ev in answered if n == "send.dispatched"], [],
                [(ev["send_id"], (n, ev)) for n, ev in answered if n != "send.dispatched"],
                [ev for n, ev in answered if n == "send.dispatched"], now_ms, now_ms - RESEND_JOBS_AFTER_MS)
        return kept

    async def _capped(self, items: list[Item], out: Outbox, now_ms: int) -> list[Item]:
        """Daily alerts count against the per-lead, per-local-day cap; welcome and triggered don't."""
        daily = [i for i in items if i.req["kind"] in DAILY_CAPPED]
        kept = [i for i in items if i.req["kind"] not in DAILY_CAPPED]
        keys = [cap_key(i.req) for i in daily]
        counted = self.unfinished.counted  # counted already by this batch's earlier attempt
        fresh = [n for n, i in enumerate(daily) if i.req["send_id"] not in counted]
        new_counts = iter(await self.state.count_today([keys[n] for n in fresh]))
        counts = [counted[i.req["send_id"]] if n not in fresh else next(new_counts) for n, i in enumerate(daily)]
        release, uncount = [], []
        for item, key, nth in zip(daily, keys, counts):
            item.counted = True
            counted[item.req["send_id"]] = nth
            if over_cap(item.req, nth, item.tenant.daily_caps):
                out.events.append(send_event("send.skipped", item.req, now_ms, reason="daily_cap"))
                release.append(item.req["send_id"])
                uncount.append(key)
            else:
                kept.append(item)
        await self._give_back(release, uncount)
        return kept

    async def _within_daily_volume(self, items: list[Item], now_ms: int, out: Outbox) -> list[Item]:
        """A tenant's daily volume per channel: what is over it waits for the next UTC day."""
        day = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000))
        next_day = (now_ms // 86_400_000 + 1) * 86_400_000
        groups: dict[tuple[str, str], list[Item]] = {}
        kept, late = [], []
        for item in items:
            limit = item.tenant.sending.daily_limit.get(item.req["channel"])
            if limit is None or is_reply(item.req):
                kept.append(item)
            else:
                groups.setdefault((item.tenant.id, item.req["channel"]), []).append(item)
        for (tenant, channel), group in groups.items():
            limit = group[0].tenant.sending.daily_limit[channel]
            granted = await self.state.take_today(tenant, channel, day, len(group), limit)
            kept += group[:granted]
            late += group[granted:]
        for item in late:
            self._defer(item.req, "tenant_daily_limit", next_day, now_ms, out)
        await self._give_back([i.req["send_id"] for i in late], [_counted_key(i) for i in late if i.counted])
        return kept

    async def _rate_limited(self, items: list[Item], now_ms: int, out: Outbox) -> list[Item]:
        items = await self._within_daily_volume(items, now_ms, out)
        second, kept, late = now_ms // 1000, [], []
        by_scope: dict[tuple[str, int], list[Item]] = {}
        for item in items:
            by_scope.setdefault((f"tenant:{item.tenant.id}", item.tenant.sending.rate_per_s), []).append(item)
        for (scope, limit), group in by_scope.items():
            granted = await self.state.take(scope, second, len(group), limit)
            kept += group[:granted]
            late += group[granted:]
        by_provider: dict[str, list[Item]] = {}
        for item in kept:
            by_provider.setdefault(self._providers(item)[0], []).append(item)
        kept = []
        for name, group in by_provider.items():
            granted = await self.state.take(f"provider:{name}", second, len(group),
                                            self.ports.policy.provider_rate_per_s)
            kept += group[:granted]
            late += group[granted:]
        for item in late:
            self._defer(item.req, "rate_limited", (second + 1) * 1000, now_ms, out)
        await self._give_back([i.req["send_id"] for i in late], [_counted_key(i) for i in late if i.counted])
        return kept

    async def _composed(self, items: list[Item], now_ms: int, out: Outbox) -> list[Item]:
        keys = [(i.req["tenant"], i.req["lead_id"]) for i in items]
        sent_before = await self.state.sent_jobs(keys, now_ms - RESEND_JOBS_AFTER_MS)
        alerts = [n for n, i in enumerate(items) if i.req["kind"] in ALERT_KINDS]
        histories = dict(zip(alerts, await self.state.histories([keys[n] for n in alerts])))
        await self.picker.for_batch({i.tenant.id for i in items})
        try:
            for n, (item, exclude) in enumerate(zip(items, sent_before)):
                picked = await self.picker.pick(item.req, item.tenant, item.state, exclude, histories.get(n, []),
                                                now_ms)
                item.jobs, item.new_keys, item.matching = picked.jobs, picked.new_keys, picked.matching
        finally:
            self.picker.batch_done()
        await self._segments(items)
        ready, skipped = [], []
        for item in items:
            # a daily alert is its new jobs, an SMS alert its jobs: without them nothing is sent
            why = may_go_without_jobs(item.req, len(item.new_keys), item.matching)
            if why:
                out.events.append(send_event("send.skipped", item.req, now_ms, reason=why))
                skipped.append(item)
            else:
                ready.append(item)
        await self._give_back([i.req["send_id"] for i in skipped], [_counted_key(i) for i in skipped])
        if self.recommender is not None:
            excluded = {id(i): ex for i, ex in zip(items, sent_before)}
            await self.recommender.fill(ready, [excluded[id(i)] for i in ready], now_ms)
        drafts = [Draft(i.req, i.tenant, i.state, i.jobs, i.new_keys, i.segments, i.arm, i.recommended)
                  for i in ready]
        codes = await self.state.link_codes(sum(codes_needed(d) for d in drafts))
        links, link_events, composed, broken = [], [], [], []
        for item, draft in zip(ready, drafts):
            n = codes_needed(draft)
            item_codes, codes = codes[:n], codes[n:]
            try:
                item.composed, item.message = compose(draft, item_codes, now_ms, self.ports.templates,
                                                      self.ports.policy)
            except Exception as exc:  # a template or content problem of this message alone
                log.error("send %s: cannot compose: %r", item.req["send_id"], exc, extra=log_ids(item.req))
                ev = send_event("send.failed", item.req, now_ms, provider="", reason="no_content",
                                error=f"compose: {exc!r}"[:300])
                out.events.append(ev)
                broken.append((item.req["send_id"], ev))
                continue
            composed.append(item)
            records = [rec.to_dict() for rec in item.composed.links]
            if records:
                links += records
                link_events.append(links_event(records, item.req["event_id"], "agent:sender"))
        if broken:
            await self.state.settle([], [], broken)
            await self.state.uncount_today([_counted_key(i) for i in ready if i not in composed])
            for sid, _ in broken:
                self.unfinished.counted.pop(sid, None)
        # links are stored before the message leaves: the first click must find its record, and
        # a Redis wipe must not lose it (sends.links, acknowledged by Kafka)
        await asyncio.gather(self.state.record([], links, now_ms, 0),
                             *([self.ports.links.keep(link_events)] if self.ports.links and link_events else []))
        return composed

    async def _segments(self, items: list[Item]) -> None:
        """The segments of the leads messages go to (for their templates' dynamic blocks): of
        every template message, and of every message of a tenant that has segments."""
        wanted = [i for i in items if i.req.get("template") or i.tenant.segments]
        if not wanted or self.ports.segments is None:
            return
        found = await self.ports.segments.of_leads([(i.req["tenant"], i.req["lead_id"]) for i in wanted])
        for item, names in zip(wanted, found):
            item.segments = names

    async def _delivered(self, items: list[Item], now_ms: int, out: Outbox) -> None:
        groups: dict[tuple[str, tuple[str, ...]], list[Item]] = {}
        for item in items:
            groups.setdefault((item.req["channel"], tuple(self._providers(item))), []).append(item)
        sent, release, uncount, failed, dispatched = [], [], [], [], []
        handed = self.unfinished.handed
        for (channel, names), group in groups.items():
            handed.update((i.req["send_id"], None) for i in group)
            outcomes = await self.ports.deliverers.for_names(names, channel).send_many([i.message for i in group])
            for item, outcome in zip(group, outcomes):
                req = item.req
                handed.pop(req["send_id"])
                if outcome.ok:
                    ev = send_event("send.dispatched", req, now_ms, provider=outcome.provider,
                                    provider_id=outcome.provider_id, template=template_label(req),
                                    template_version=item.composed.template_version,
                                    creative=getattr(getattr(item.composed, "creative", None), "id", None),
                                    job_keys=[j.key for j in item.jobs], links=len(item.composed.links),
                                    segments=getattr(item.composed, "segments", 0),
                                    **(item.arm.fields() if item.arm else {}))
                    out.events.append(ev)
                    sent.append((req["send_id"], ev))
                    dispatched.append(ev[1])
                    handed[req["send_id"]] = ev
                elif outcome.permanent or req.get("attempt", 0) + 1 >= MAX_ATTEMPTS:
                    reason = "permanent" if outcome.permanent else "retries_exhausted"
                    ev = send_event("send.failed", req, now_ms, provider=outcome.provider,
                                    error=(outcome.error or "")[:300], reason=reason)
                    log.warning("send %s failed (%s) at %s: %s", req["send_id"], reason, outcome.provider,
                                outcome.error, extra=log_ids(req))
                    out.events.append(ev)
                    failed.append((req["send_id"], ev))
                    handed[req["send_id"]] = ev
                else:
                    retry_at = now_ms + backoff_ms(req.get("attempt", 0), outcome.retry_after_s)
                    self._defer(req, f"provider_transient: {outcome.error or ''}"[:200], retry_at, now_ms, out)
                    release.append(req["send_id"])
                    uncount.append(_counted_key(item))
        await self.state.settle_and_record(sent, release, failed, dispatched, now_ms, now_ms - RESEND_JOBS_AFTER_MS)
        await self.state.uncount_today(uncount)
        for sid in release:
            self.unfinished.counted.pop(sid, None)

    # -- helpers --------------------------------------------------------------------------

    def _settled_now(self, verdict: Verdict, req: dict, now_ms: int, out: Outbox) -> bool:
        """Record a skip or a deferral; True when the request goes no further in this batch."""
        if verdict.action == "skip":
            out.events.append(send_event("send.skipped", req, now_ms, reason=verdict.reason))
            return True
        if verdict.action == "defer":
            self._defer(req, verdict.reason, verdict.retry_at, now_ms, out)
            return True
        return False

    def _defer(self, req: dict, reason: str, retry_at: int, now_ms: int, out: Outbox) -> None:
        out.events.append(send_event("send.deferred", req, now_ms, reason=reason, retry_at=retry_at))
        out.retries.append(retried(req, retry_at))

    async def _give_back(self, send_ids: list[str], cap_keys: list[tuple]) -> None:
        if send_ids:
            await self.state.settle([], send_ids, [])
        await self.state.uncount_today(cap_keys)
        for sid in send_ids:  # given back: a retry counts them afresh
            self.unfinished.counted.pop(sid, None)

    def _providers(self, item: Item) -> list[str]:
        cfg = item.tenant.lists.get(item.req["list"])
        if cfg is not None and cfg.providers:
            return list(cfg.providers)
        return list(getattr(item.tenant.sending, item.req["channel"]))


def _counted_key(item: Item) -> tuple | None:
    return cap_key(item.req) if item.counted else None


def _claimed_by(mark: bytes) -> str:
    """The owner of an in-flight claim ("inflight|{owner}|{ms}"), "" for any other mark."""
    parts = mark.split(b"|")
    return parts[1].decode() if len(parts) == 3 and parts[0] == b"inflight" else ""


def _stored_event(mark: bytes) -> tuple[str, dict]:
    """The event recorded with a settled mark: "sent|{json}" or "failed|{json}"."""
    _, _, payload = mark.decode().partition("|")
    doc = orjson.loads(payload)
    return doc["name"], doc["event"]
