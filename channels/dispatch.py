"""One batch of send requests, from request to provider and back to events.

screen (again, at send time) -> claim the send ids -> per-lead daily cap -> tenant and
provider rate limits -> match jobs and compose -> store the tracked links -> deliver through
the list's provider chain -> settle the marks -> the events. Whatever cannot go now is
deferred to the retry topic with its not_before; nothing is dropped.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import orjson

from channels.base import EmailMessage, SmsMessage
from channels.dkim import DkimSigner, KeyLoader
from channels.registry import Chains, build_providers
from domain.compose import (EmailContext, ListFacts, Recipient, SmsContext, TenantBrand, compose_email,
                            compose_reply, compose_sms, email_codes_needed, list_title, schedule_phrase,
                            sms_codes_needed)
from domain.creatives import Creative
from domain.geo import zip_point
from domain.links import signed_code
from domain.jobs import is_new, new_since
from domain.matching import JobIndex, rank
from domain.sending import (ALERT_KINDS, DAILY_CAPPED, Verdict, after_mark, backoff_ms, empty_alert_reason,
                            is_reply, over_cap, previous_alert_ms, reply_text, retried, screen, screen_reply,
                            send_event)
from projections.redis_jobs import JobStore
from projections.redis_sends import SendState
from projections.templates import TemplateStore

log = logging.getLogger("leadstream.dispatch")
MAX_ATTEMPTS = 8
RESEND_JOBS_AFTER_MS = 14 * 24 * 3600 * 1000  # a job is not sent to the same lead again within this
WELCOME_TEMPLATE = "welcome"  # tenants/templates/{tenant}/welcome.*, else default/welcome.*


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


class Dispatcher:
    """Holds what outlives a batch: provider chains, templates, job indexes, Redis state."""

    def __init__(self, deps, chains: Chains | None = None, templates: TemplateStore | None = None):
        self.deps = deps
        signer = DkimSigner(lambda: deps.tenants, KeyLoader(deps.settings.secrets_dir))
        self.chains = chains or Chains(build_providers(deps.settings, sign=signer.sign))
        self.templates = templates or TemplateStore()
        self.state = SendState(deps.redis)
        self.jobs = JobStore(deps.redis)
        self.indexes: dict[str, tuple[int, JobIndex]] = {}
        self.owner = f"{os.uname().nodename}:{os.getpid()}"

    async def run(self, reqs: list[dict], now_ms: int) -> Outbox:
        """Process a batch of decoded send.requested events."""
        out = Outbox()
        items = await self._screened(reqs, now_ms, out)
        items = await self._claimed(items, now_ms, out)
        items = await self._capped(items, out, now_ms)
        items = await self._rate_limited(items, now_ms, out)
        items = await self._composed(items, now_ms, out)
        await self._delivered(items, now_ms, out)
        return out

    # -- the steps ------------------------------------------------------------------------

    async def _screened(self, reqs: list[dict], now_ms: int, out: Outbox) -> list[Item]:
        leads = self.deps.leads
        states = await leads.get_many([(r["tenant"], r["lead_id"]) for r in reqs])
        found = await leads.lookup([(r["tenant"], r["lead_id"], _suppression_keys(s, r)) for r, s in zip(reqs, states)])
        items = []
        for req, state, look in zip(reqs, states, found):
            tenant = self.deps.tenants.tenants.get(req["tenant"])
            suppressed = look.blocklisted or look.opted_out
            if tenant and req["kind"] == "more_jobs" and not req["list"] and state is not None:
                req = {**req, "list": _sms_list(tenant, state)}
            if not tenant:
                verdict = Verdict("skip", "unknown_tenant")
            elif is_reply(req):  # answering the person, even the STOP that just unsubscribed them
                verdict = screen_reply(req, state, look.blocklisted, now_ms)
            else:
                cfg = tenant.lists.get(req["list"])
                verdict = screen(req, state, suppressed, now_ms, cfg.effective_quiet_hours if cfg else None)
            if self._settled_now(verdict, req, now_ms, out):
                continue
            items.append(Item(req, state, tenant))
        return items

    async def _claimed(self, items: list[Item], now_ms: int, out: Outbox) -> list[Item]:
        marks = await self.state.claim([i.req["send_id"] for i in items], self.owner, now_ms)
        kept, failed = [], []
        for item, mark in zip(items, marks):
            verdict = after_mark(mark, now_ms, int(self.deps.settings.send_lease_s * 1000))
            if verdict.action == "skip" and mark and b"|{" in mark:
                out.events.append(_stored_event(mark))  # re-emit what the first attempt recorded
                continue
            if verdict.action == "fail":
                log.error("send %s: a worker died mid-send; outcome unknown, not sent again",
                          item.req["send_id"], extra=_ids(item.req))
                ev = send_event("send.failed", item.req, now_ms, provider="", reason="outcome_unknown",
                                error="a worker died between claiming this send and recording the provider's answer")
                out.events.append(ev)
                failed.append((item.req["send_id"], ev))
                continue
            if not self._settled_now(verdict, item.req, now_ms, out):
                kept.append(item)
        if failed:
            await self.state.settle([], [], failed)
        return kept

    async def _capped(self, items: list[Item], out: Outbox, now_ms: int) -> list[Item]:
        """Daily alerts count against the per-lead, per-local-day cap; welcome and triggered don't."""
        daily = [i for i in items if i.req["kind"] in DAILY_CAPPED]
        kept = [i for i in items if i.req["kind"] not in DAILY_CAPPED]
        keys = [(i.req["tenant"], i.req["channel"], i.req["lead_id"], i.req["local_date"]) for i in daily]
        counts = await self.state.count_today(keys)
        release, uncount = [], []
        for item, key, nth in zip(daily, keys, counts):
            item.counted = True
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
        await self._give_back([i.req["send_id"] for i in late], [_cap_key(i) for i in late if i.counted])
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
                                            self.deps.settings.provider_rate_per_s)
            kept += group[:granted]
            late += group[granted:]
        for item in late:
            self._defer(item.req, "rate_limited", (second + 1) * 1000, now_ms, out)
        await self._give_back([i.req["send_id"] for i in late], [_cap_key(i) for i in late if i.counted])
        return kept

    async def _composed(self, items: list[Item], now_ms: int, out: Outbox) -> list[Item]:
        keys = [(i.req["tenant"], i.req["lead_id"]) for i in items]
        sent_before = await self.state.sent_jobs(keys, now_ms - RESEND_JOBS_AFTER_MS)
        alerts = [n for n, i in enumerate(items) if i.req["kind"] in ALERT_KINDS]
        histories = dict(zip(alerts, await self.state.histories([keys[n] for n in alerts])))
        for n, (item, exclude) in enumerate(zip(items, sent_before)):
            await self._match(item, exclude, histories.get(n, []), now_ms)
        ready, skipped = [], []
        for item in items:
            # a daily alert is its new jobs, an SMS alert its jobs: without them nothing is sent
            why = None if is_reply(item.req) else empty_alert_reason(
                item.req["kind"], item.req["channel"], len(item.new_keys), item.matching)
            if why:
                out.events.append(send_event("send.skipped", item.req, now_ms, reason=why))
                skipped.append(item)
            else:
                ready.append(item)
        await self._give_back([i.req["send_id"] for i in skipped], [_cap_key(i) for i in skipped])
        codes = await self.state.link_codes(sum(self._codes_needed(i) for i in ready))
        links, composed, broken = [], [], []
        for item in ready:
            n = self._codes_needed(item)
            item_codes, codes = codes[:n], codes[n:]
            try:
                item.composed, item.message = self._compose(item, item_codes, now_ms)
            except Exception as exc:  # a template or content problem of this message alone
                log.error("send %s: cannot compose: %r", item.req["send_id"], exc, extra=_ids(item.req))
                ev = send_event("send.failed", item.req, now_ms, provider="", reason="no_content",
                                error=f"compose: {exc!r}"[:300])
                out.events.append(ev)
                broken.append((item.req["send_id"], ev))
                continue
            composed.append(item)
            links += [rec.to_dict() for rec in item.composed.links]
        if broken:
            await self.state.settle([], [], broken)
            await self.state.uncount_today([_cap_key(i) for i in ready if i not in composed])
        ready = composed
        # links are stored before the message leaves: the first click must find its record
        await self.state.record([], links, now_ms, 0)
        return ready

    async def _delivered(self, items: list[Item], now_ms: int, out: Outbox) -> None:
        groups: dict[tuple[str, tuple[str, ...]], list[Item]] = {}
        for item in items:
            groups.setdefault((item.req["channel"], tuple(self._providers(item))), []).append(item)
        sent, release, uncount, failed, dispatched = [], [], [], [], []
        for (channel, names), group in groups.items():
            outcomes = await self.chains.for_names(names, channel).send_many([i.message for i in group])
            for item, outcome in zip(group, outcomes):
                req = item.req
                if outcome.ok:
                    ev = send_event("send.dispatched", req, now_ms, provider=outcome.provider,
                                    provider_id=outcome.provider_id, template=f"{req['tenant']}/{req['list']}",
                                    template_version=item.composed.template_version,
                                    creative=getattr(getattr(item.composed, "creative", None), "id", None),
                                    job_keys=[j.key for j in item.jobs], links=len(item.composed.links),
                                    segments=getattr(item.composed, "segments", 0))
                    out.events.append(ev)
                    sent.append((req["send_id"], ev))
                    dispatched.append(ev[1])
                elif outcome.permanent or req.get("attempt", 0) + 1 >= MAX_ATTEMPTS:
                    reason = "permanent" if outcome.permanent else "retries_exhausted"
                    ev = send_event("send.failed", req, now_ms, provider=outcome.provider,
                                    error=(outcome.error or "")[:300], reason=reason)
                    log.warning("send %s failed (%s) at %s: %s", req["send_id"], reason, outcome.provider,
                                outcome.error, extra=_ids(req))
                    out.events.append(ev)
                    failed.append((req["send_id"], ev))
                else:
                    retry_at = now_ms + backoff_ms(req.get("attempt", 0), outcome.retry_after_s)
                    self._defer(req, f"provider_transient: {outcome.error or ''}"[:200], retry_at, now_ms, out)
                    release.append(req["send_id"])
                    uncount.append(_cap_key(item))
        await self.state.settle(sent, release, failed)
        await self.state.uncount_today(uncount)
        await self.state.record(dispatched, [], now_ms, now_ms - RESEND_JOBS_AFTER_MS)

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
        again = retried(req, retry_at)
        out.events.append(send_event("send.deferred", req, now_ms, reason=reason, retry_at=retry_at))
        out.retries.append(again)

    async def _give_back(self, send_ids: list[str], cap_keys: list[tuple]) -> None:
        if send_ids:
            await self.state.settle([], send_ids, [])
        await self.state.uncount_today(cap_keys)

    def _providers(self, item: Item) -> list[str]:
        cfg = item.tenant.lists.get(item.req["list"])
        if cfg is not None and cfg.providers:
            return list(cfg.providers)
        return list(getattr(item.tenant.sending, item.req["channel"]))

    async def _match(self, item: Item, exclude: set[str], history: list[dict], now_ms: int) -> None:
        """The item's jobs, best match first, one per distinct job: for a daily alert only jobs
        first seen since the lead's previous alert on the list; which of them are new."""
        if is_reply(item.req):
            return
        req = item.req
        since = new_since(previous_alert_ms(history, req["list"]), now_ms) if req["kind"] in ALERT_KINDS else None
        only_new = since if req["kind"] == "daily" else None
        matches = await self._matches(item, exclude, now_ms, only_new)
        item.jobs = [m.job for m in matches]
        item.new_keys = frozenset(m.job.key for m in matches if since is not None and is_new(m.first_seen_ms, since))
        item.matching = len(matches) or (len(await self._matches(item, exclude, now_ms, None, k=1))
                                         if only_new is not None else 0)

    async def _matches(self, item: Item, exclude: set[str], now_ms: int, new_since_ms: int | None = None,
                       k: int | None = None) -> list:
        index = await self._index(item.tenant.id)
        profile = item.state.profile or {}
        point = None
        if profile.get("lat") is not None and profile.get("lon") is not None:
            point = (profile["lat"], profile["lon"])
        elif profile.get("zip"):
            point = zip_point(str(profile["zip"])[:5])
        cfg = item.tenant.lists.get(item.req["list"])
        if k is None:
            k = cfg.jobs_per_message if cfg else 5
            if item.req["channel"] == "sms":
                k = min(k, 3)
            if item.req["kind"] == "welcome":
                k = min(k, 3)  # a welcome shows a few current matches, not a whole alert
        return rank(index, profile.get("keywords") or [], profile.get("categories") or [],
                    point, now_ms, exclude, k=k, new_since_ms=new_since_ms)

    async def _index(self, tenant: str) -> JobIndex:
        """The tenant's job index, rebuilt only when its jobs changed."""
        version = await self.jobs.version(tenant)
        cached = self.indexes.get(tenant)
        if cached and cached[0] == version:
            return cached[1]
        index = JobIndex(tenant)
        for job in (await self.jobs.load(tenant)).values():
            index.add(job)
        self.indexes[tenant] = (version, index)
        return index

    def _codes_needed(self, item: Item) -> int:
        if is_reply(item.req):
            return 0
        if item.req["channel"] == "sms":
            return sms_codes_needed(len(item.jobs))
        cfg = item.tenant.lists.get(item.req["list"])
        return email_codes_needed(len(item.jobs), bool(cfg and cfg.creatives))

    def _compose(self, item: Item, numbers: list[int], now_ms: int):
        req, tenant, state = item.req, item.tenant, item.state
        key = self.deps.settings.link_key_ring[0]
        codes = [signed_code(n, key) for n in numbers]
        brand = TenantBrand(tenant.id, tenant.name, tenant.brand.postal_address,
                            tenant.brand.from_name or tenant.name, tenant.brand.from_address,
                            tenant.brand.unsubscribe_mailto, tenant.brand.sms_max_segments)
        who = Recipient(state.lead_id, state.address, state.first_name or "", "")
        base = self.deps.settings.tracking_base_url
        cfg = tenant.lists.get(req["list"])
        welcome = req["kind"] == "welcome"
        template = WELCOME_TEMPLATE if welcome else tenant.template_of(req["list"])
        facts = _list_facts(req["list"], cfg) if welcome and cfg else None
        if is_reply(req):
            text = reply_text(req, tenant.name, tenant.engagement.help_contact)
            composed = compose_reply(req["send_id"], state.address, text, tenant.brand.sms_max_segments)
            return composed, SmsMessage(req["send_id"], tenant.brand.sms_from, state.address, composed.body)
        if req["channel"] == "sms":
            composed = compose_sms(SmsContext(brand, who, req["list"], req["send_id"],
                                              self.templates.sms(tenant.id, template), item.jobs, codes,
                                              base, now_ms, campaign=req["kind"], partner=req.get("partner", ""),
                                              max_segments=cfg.sms_segments if cfg else None,
                                              new_job_keys=item.new_keys, list_facts=facts))
            return composed, SmsMessage(req["send_id"], tenant.brand.sms_from, state.address, composed.body)
        creatives = [Creative(**c.model_dump()) for c in (cfg.creatives if cfg else [])]
        composed = compose_email(EmailContext(brand, who, req["list"], req["send_id"],
                                              self.templates.email(tenant.id, template), item.jobs, codes,
                                              base, now_ms, creatives=creatives, campaign=req["kind"],
                                              partner=req.get("partner", ""), new_job_keys=item.new_keys,
                                              list_facts=facts))
        message = EmailMessage(req["send_id"], brand.from_address, brand.from_name, state.address,
                               composed.subject, composed.html, composed.text, composed.headers,
                               {"send_id": req["send_id"], "tenant": tenant.id, "lead_id": state.lead_id,
                                "list": req["list"]})
        return composed, message


def _ids(req: dict) -> dict:
    """The ids a log line about one request carries (see streams/logs.py)."""
    return {"tenant": req["tenant"], "lead_id": req["lead_id"], "event_id": req["event_id"],
            "send_id": req["send_id"]}


def _suppression_keys(state, req: dict) -> list[str]:
    if state is None:
        return [req["lead_id"]]
    if req["channel"] == "email" and "@" in state.address:
        return [state.address, "@" + state.address.rsplit("@", 1)[1]]
    return [state.address]


def _cap_key(item: Item) -> tuple | None:
    r = item.req
    return (r["tenant"], r["channel"], r["lead_id"], r["local_date"]) if item.counted else None


def _stored_event(mark: bytes) -> tuple[str, dict]:
    """The event recorded with a settled mark: "sent|{json}" or "failed|{json}"."""
    _, _, payload = mark.decode().partition("|")
    doc = orjson.loads(payload)
    return doc["name"], doc["event"]




def _list_facts(name: str, cfg) -> ListFacts:
    """What a welcome says about the list joined: its title and when it sends."""
    return ListFacts(list_title(name, cfg.title), schedule_phrase(cfg.send_time, cfg.cadence), cfg.channel)


def _sms_list(tenant, state) -> str:
    """The lead's SMS list, for a "more jobs" request that names none."""
    for name in state.lists:
        cfg = tenant.lists.get(name)
        if cfg is not None and cfg.channel == "sms":
            return name
    return next(iter(state.lists), "")
