"""Engagement out: what people do with a brand's messages written back on its CRM's contacts.

The crm agent follows leads.events and engagement.events (follow): a person's opens, clicks and
conversions (machines never count) raise each lead's times in its CRM record
(projections/redis_crm.py CrmFields), a name a partner brought registers as ours (the two-way
fields of domain/crm_fields.py), and every change marks the lead due. Every tick each brand's due
leads are written back (write_back): the score, last open and click, status, unsubscribed and
conversions as contact properties, only those that changed since the last write, in upserts of
100 within the brand's share of the CRM's rate limit (what is left waits for the next tick).
A lead leaves the outbox only once the CRM took its write (or refused it for good: counted).
An erased person is never written, and what we wrote on their contact is emptied
(clear_erased, called by the erasure before their traces go). An emptying the CRM does not take
at once is owed: durable on the compacted privacy.crm_emptying topic before Redis' working copy
(ls:crmclear) holds it, so a Redis loss does not forget it (the replay rebuilds the set), and
tombstoned there once the CRM took it.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time

import httpx

from channels.crm.hubspot import CrmError, HubSpot
from channels.dkim import DkimUnavailable, KeyLoader
from domain.crm_fields import OURS, Engagement, Held, change_wins, cleared, unwritten, write_back
from domain.engagement import event_ms
from domain.identity import new_event_id
from projections.redis_crm import SETTLE_US, CrmFields, CrmStore
from projections.redis_engagement import eng_key
from projections.redis_leads import LeadStore
from schemas.codec import DecodeError
from streams.topics import CRM_EMPTYING

log = logging.getLogger("leadstream.crm")
BATCH = 1000  # leads read from a brand's outbox per tick
FIELD_OF_EVENT = {"first_name": "first_name", "last_name": "last_name"}
ENGAGED = {"engagement.opened": "e:last_open", "engagement.clicked": "e:last_click"}
STATUS_EVENTS = ("lead.accepted", "lead.resubmitted", "lead.unsubscribed", "lead.resubscribed")
_LOCKS: dict[str, asyncio.Lock] = {}


def record_lock(tenant: str) -> asyncio.Lock:
    """One reader-decider-writer of a brand's CRM records at a time in this process (the agent's
    fold, the poll, the write-back): the crm agent runs one worker (scaling/agents.yaml), so
    read-decide-write on a record never interleaves with another."""
    return _LOCKS.setdefault(tenant, asyncio.Lock())


def _writes_back(tenant) -> bool:
    return tenant.crm is not None and tenant.crm.out != "off"


async def follow(deps, values: list[bytes | None]) -> int:
    """Fold a batch of lead and engagement events into the CRM records of brands that write back;
    undecodable messages are the other agents' to dead-letter."""
    fields = CrmFields(deps.redis)
    marks, raises, names, convs = set(), [], [], {}
    todo = []
    for value in values:
        try:
            name, ev = deps.codec.decode(value or b"")
            tenant = deps.tenants.tenants[ev["tenant"]]
        except (DecodeError, KeyError):
            continue
        if _writes_back(tenant) and ev.get("lead_id"):
            todo.append((name, ev, tenant))
    opened = await deps.sealer().open([(name, ev) for name, ev, _ in todo])  # names sealed in the log
    todo = [(name, ev, tenant) for (name, ev), (_, _, tenant) in zip(opened, todo)]
    # an erased person's late events (a click on an old message) write nothing about them again
    erased = await deps.do_not_contact().erased([(t.id, ev["lead_id"]) for _, ev, t in todo])
    for (name, ev, tenant), gone in zip(todo, erased):
        if gone:
            continue
        t, lid = tenant.id, ev["lead_id"]
        if name in ENGAGED:  # any revision marks the lead: the score may have moved
            if not ev["is_bot"] and ev["revision"] == 0:
                raises.append((t, lid, ENGAGED[name], event_ms(ev["occurred_at"])))
        elif name == "engagement.converted":
            raises.append((t, lid, "e:last_conversion", event_ms(ev["occurred_at"])))
            convs.setdefault((t, lid), {})[f"c:{ev['event_id']}"] = "1"
        elif name == "lead.accepted" and ev["partner"] != tenant.crm.partner:
            names.append((tenant, ev))
        elif name not in STATUS_EVENTS:
            continue
        marks.add((t, lid))
    await fields.raise_to(raises)
    for (t, lid), counted in convs.items():
        await fields.put(t, {lid: counted})
    for tenant, ev in names:
        async with record_lock(tenant.id):
            await _register_ours(fields, tenant, ev)
    await fields.mark(sorted(marks))
    return len(values)


async def _register_ours(fields: CrmFields, tenant, ev: dict) -> None:
    """A lead's names from a partner other than the CRM: our side's change of its two-way fields."""
    crm, at = tenant.crm, event_ms(ev["occurred_at"])
    [reg] = await fields.of(tenant.id, [ev["lead_id"]])
    change = {}
    for prop, field in crm.properties.items():
        value = ev.get(FIELD_OF_EVENT.get(field, ""))
        held = Held.decode(reg[f"h:{prop}"]) if f"h:{prop}" in reg else None
        if value and change_wins(crm.truth.get(prop, "latest"), OURS, at, held):
            change[f"h:{prop}"] = Held(value, at, OURS).encode()
    await fields.put(tenant.id, {ev["lead_id"]: change})


async def write_back_all(deps, loader: KeyLoader, now_ms: int) -> dict[str, str]:
    """Write back every brand's due leads (one writer per brand at a time); brand -> what happened."""
    out = {}
    for tenant in deps.tenants.tenants.values():
        if not _writes_back(tenant):
            continue
        if not await deps.redis.set(f"ls:crmoutlock:{tenant.id}", "1", px=60_000, nx=True):
            continue
        try:
            out[tenant.id] = await write_back_one(deps, loader, tenant, now_ms)
            await clear_owed(deps, loader, tenant)
        finally:
            await deps.redis.delete(f"ls:crmoutlock:{tenant.id}")
    return out


async def write_back_one(deps, loader: KeyLoader, tenant, now_ms: int) -> str:
    """One brand's due leads written; never raises for a CRM that misbehaves (they stay due)."""
    store = CrmStore(deps.redis)
    try:
        token = loader.load(tenant.crm.token).decode()
        async with httpx.AsyncClient() as http:
            written, refused, waiting = await write_due(deps, HubSpot(tenant.crm.base_url, token, http), tenant, now_ms)
    except (CrmError, DkimUnavailable) as exc:
        log.warning("crm %s: write-back: %s (the leads stay due)", tenant.id, exc)
        await store.report(tenant.id, out_status="error", out_error=str(exc)[:500], out_at_ms=now_ms)
        return f"error: {exc}"
    if written or refused:
        await store.report(tenant.id, out_status="ok", out_error="", out_at_ms=now_ms, out_written=written,
                           out_refused=refused, out_waiting=waiting)
    return f"ok: {written} written, {refused} refused, {waiting} waiting for the rate limit"


async def write_due(deps, client: HubSpot, tenant, now_ms: int, settle_us: int = SETTLE_US) -> tuple[int, int, int]:
    """(written, refused, waiting for the rate limit) of one pass over the brand's due leads."""
    async with record_lock(tenant.id):
        return await _write_due(deps, client, tenant, now_ms, settle_us)


async def _write_due(deps, client: HubSpot, tenant, now_ms: int, settle_us: int) -> tuple[int, int, int]:
    fields, crm, t = CrmFields(deps.redis), tenant.crm, tenant.id
    entries = await fields.due(t, BATCH, settle_us)
    if not entries:
        return 0, 0, 0
    lids = [lid for lid, _ in entries]
    states = await LeadStore(deps.redis).get_many([(t, lid) for lid in lids])
    regs = await fields.of(t, lids)
    pipe = deps.redis.pipeline(transaction=False)
    for lid in lids:
        pipe.hgetall(eng_key(t, lid))
    engs = await pipe.execute()
    erased = await deps.do_not_contact().erased([(t, lid) for lid in lids])
    todo, idle = [], []
    for entry, state, reg, eng, gone in zip(entries, states, regs, engs, erased):
        if state is None and not gone and _young(entry[1]):
            continue  # its lead event is out but the intake's read model not written yet: stays due
        props = None if gone or state is None else _to_write(crm, state, reg, eng)
        (todo if props else idle).append((entry, state, props))
    allowed = await fields.take_requests(t, math.ceil(len(todo) / 100), crm.out_requests_per_10s, now_ms) * 100
    todo, waiting = todo[:allowed], max(0, len(todo) - allowed)
    result = await client.upsert([{"email": state.address, "properties": props} for _, state, props in todo])
    # erased while the write was under way: their contact emptied again, no record of them kept
    now_gone = await deps.do_not_contact().erased([(t, e[0]) for e, _, _ in todo])
    late = [result.contacts[st.address]["id"] for (_, st, _), g in zip(todo, now_gone)
            if g and st.address in result.contacts]
    if late:
        await owe_emptying(deps, t, [str(c) for c in late])
    await fields.put(t, {entry[0]: _after_write(crm, props, result.contacts.get(state.address))
                         for (entry, state, props), g in zip(todo, now_gone)
                         if state.address in result.contacts and not g})
    await fields.done(t, [e for e, _, _ in idle] + [e for e, _, _ in todo])
    return len(result.written), len(result.refused), waiting


def _young(marked_us: float, within_s: float = 600) -> bool:
    return time.time() - marked_us / 1e6 < within_s


def _to_write(crm, state, reg: dict[str, str], eng: dict) -> dict[str, str] | None:
    """The properties this lead's contact is to be given now (None: nothing, or not ours to write)."""
    if state.channel != "email" or (crm.out == "crm_contacts" and "id" not in reg):
        return None
    engagement = Engagement(state.status, int(eng.get(b"score", 0)), int(reg.get("e:last_open", 0)),
                            int(reg.get("e:last_click", 0)), sum(1 for k in reg if k.startswith("c:")),
                            int(reg.get("e:last_conversion", 0)))
    props = unwritten(engagement.properties(), {k[2:]: v for k, v in reg.items() if k.startswith("w:")})
    for prop in crm.properties:
        held = Held.decode(reg[f"h:{prop}"]) if f"h:{prop}" in reg else None
        value = write_back(crm.truth.get(prop, "latest"), held, reg.get(f"s:{prop}"))
        if value is not None:
            props[prop] = value
    return props or None


def _after_write(crm, props: dict[str, str], contact: dict | None) -> dict[str, str]:
    """What a lead's CRM record knows after its write: what we wrote (a two-way field we wrote is
    what the CRM now holds, so its coming back is recognised as ours), the contact's id, and for a
    contact the write created, that its other two-way fields are empty. The values an existing
    contact answers with are not taken as seen: a CRM user's change the poll has not read yet
    would be masked."""
    out = {f"w:{k}": v for k, v in props.items() if k not in crm.properties}
    out.update({f"s:{p}": v for p, v in props.items() if p in crm.properties})
    if contact and contact.get("new"):
        out.update({f"s:{p}": "" for p in crm.properties if p not in props})
    if contact and contact.get("id"):
        out["id"] = str(contact["id"])
    return out


async def clear_erased(deps, tenant, lead_ids: list[str], loader: KeyLoader | None = None) -> dict[str, bool]:
    """Empty what we wrote on the contacts of these erased leads (by contact id: a contact is never
    created for them); lead -> whether its contact was emptied now. What the CRM does not take (down,
    refusing the token) is owed: the crm agent empties it at its next ticks, and the erasure goes on."""
    if tenant.crm is None:
        return {}
    async with record_lock(tenant.id):
        regs = await CrmFields(deps.redis).of(tenant.id, lead_ids)
        ids = {lid: reg["id"] for lid, reg in zip(lead_ids, regs)
               if "id" in reg and any(k.startswith("w:") for k in reg)}
        if not ids:
            return {}
        try:
            await _empty(deps, loader, tenant, list(ids.values()), attempts=2)
        except (CrmError, DkimUnavailable) as exc:
            log.warning("crm %s: emptying %d erased contacts: %s (owed: the crm agent retries)", tenant.id, len(ids), exc)
            await owe_emptying(deps, tenant.id, list(ids.values()))
            return dict.fromkeys(ids, False)
        return dict.fromkeys(ids, True)


async def clear_owed(deps, loader: KeyLoader, tenant) -> int:
    """Empty the contacts of erased people the CRM did not take before (the erasure or a late write)."""
    fields = CrmFields(deps.redis)
    ids = await fields.owed_clearing(tenant.id)
    if not ids:
        return 0
    try:
        await _empty(deps, loader, tenant, ids)
    except (CrmError, DkimUnavailable) as exc:
        log.warning("crm %s: emptying %d erased contacts: %s (still owed)", tenant.id, len(ids), exc)
        return 0
    await deps.producer.send_many([(deps.topic(CRM_EMPTYING), f"{tenant.id}/{cid}".encode(), None, None)
                                   for cid in ids])  # emptied: the topic forgets them, then Redis
    await fields.cleared(tenant.id, ids)
    return len(ids)


async def owe_emptying(deps, tenant: str, contact_ids: list[str]) -> None:
    """These contacts' emptying owed: on the topic first (a Redis loss keeps it), then in Redis."""
    now_ms = int(time.time() * 1000)
    records = [(deps.topic(CRM_EMPTYING), f"{tenant}/{cid}".encode(), deps.codec.encode("privacy.crm_emptying_owed", {
        "event_id": new_event_id(now_ms, os.urandom(10)), "tenant": tenant, "occurred_at": now_ms,
        "schema": "privacy.crm_emptying_owed@1", "causation_id": None, "source": "crm", "contact_id": cid}), None)
        for cid in contact_ids]
    await deps.producer.send_many(records)
    await CrmFields(deps.redis).owe_clearing(tenant, contact_ids)


async def _empty(deps, loader: KeyLoader | None, tenant, contact_ids: list[str], attempts: int = 8) -> None:
    token = (loader or KeyLoader(deps.settings.secrets_dir)).load(tenant.crm.token).decode()
    async with httpx.AsyncClient() as http:
        crm = HubSpot(tenant.crm.base_url, token, http, max_attempts=attempts, timeout_s=10)
        await crm.update([{"id": cid, "properties": cleared()} for cid in contact_ids])
