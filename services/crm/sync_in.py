"""Contacts in: each brand's CRM contacts become leads through the normal intake.

Every `every_s` (or at the next tick after a webhook said something changed), the contacts
modified since the cursor minus `lookback_s` are read (oldest change first, across the search
cap: channels/crm/hubspot.py) and each becomes a lead.submitted of the brand's CRM list, from
its CRM source, on leads.submitted: validation, dedupe, suppression and consent happen where they
happen for every lead. A contact's event id is derived from its id and modification time, so
the overlap of the lookback (and any re-read after a crash or a Redis loss) produces identical
events the intake decides once; a change read twice is nothing twice. An erased person (the
do-not-contact list) is not produced at all. The cursor moves only after a poll's leads are in
Kafka, and only forward.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from channels.crm.hubspot import Contact, CrmError, HubSpot
from channels.dkim import DkimUnavailable, KeyLoader
from domain.crm_fields import CRM, Held, change_wins, crm_sets
from domain.identity import LeadIds, derived_event_id
from domain.lead_input import LeadIn
from domain.submission import SubmissionError, build_submitted
from projections.redis_crm import CrmFields, CrmStore
from services.crm.sync_out import record_lock
from streams.topics import SUBMITTED

log = logging.getLogger("leadstream.crm")
SOURCE = "crm"


@dataclass
class Polled:
    contacts: int = 0
    produced: int = 0
    refused_erased: int = 0
    invalid: int = 0
    unchanged: int = 0
    cursor_ms: int = 0

    def __str__(self) -> str:
        return (f"ok: {self.contacts} contacts, {self.produced} leads, {self.refused_erased} erased, "
                f"{self.invalid} invalid, {self.unchanged} unchanged")


async def poll_crms(deps, loader: KeyLoader, now_ms: int, force: bool = False) -> dict[str, str]:
    """Poll every brand's CRM that is due (or all, with force); brand -> what happened."""
    store, out = CrmStore(deps.redis), {}
    for tenant in deps.tenants.tenants.values():
        crm = tenant.crm
        if crm is None:
            continue
        if not await store.claim(tenant.id, settings_tag(crm), str(os.getpid()), crm.every_s * 1000) and not force:
            continue
        out[tenant.id] = await poll_one(deps, store, loader, tenant, now_ms)
    return out


def settings_tag(crm) -> str:
    """A short name of this version of the CRM settings (changed settings are polled at once)."""
    return hashlib.blake2b(crm.model_dump_json().encode(), digest_size=6).hexdigest()


async def poll_one(deps, store: CrmStore, loader: KeyLoader, tenant, now_ms: int) -> str:
    """Read and produce one brand's changed contacts; never raises for a CRM that misbehaves."""
    crm = tenant.crm
    try:
        token = loader.load(crm.token).decode()
        async with httpx.AsyncClient() as http:
            done = await read_into_intake(deps, HubSpot(crm.base_url, token, http), tenant, now_ms,
                                          await store.cursor(tenant.id))
    except (CrmError, DkimUnavailable) as exc:
        log.warning("crm %s: %s (the cursor stays; the next poll reads again)", tenant.id, exc)
        await store.report(tenant.id, status="error", error=str(exc)[:500], at_ms=now_ms)
        return f"error: {exc}"
    await store.report(tenant.id, status="ok", error="", at_ms=now_ms, contacts=done.contacts,
                       refused=done.refused_erased + done.invalid, unchanged=done.unchanged, cursor_ms=done.cursor_ms)
    return str(done)


async def read_into_intake(deps, client: HubSpot, tenant, now_ms: int, cursor_ms: int) -> Polled:
    crm, done = tenant.crm, Polled(cursor_ms=cursor_ms)
    since = max(0, cursor_ms - crm.lookback_s * 1000)
    fields = CrmFields(deps.redis)
    async for page in client.changed_since(since, sorted(crm.properties)):
        subs = []
        for contact in page:
            done.contacts += 1
            sub = _submission(tenant, contact, deps.lead_ids)
            if sub is None:
                done.invalid += 1
            else:
                subs.append((contact, sub))
        erased = await deps.do_not_contact().erased([(s["tenant"], s["lead_id"]) for _, s in subs])
        keep = [cs for cs, gone in zip(subs, erased) if not gone]
        done.refused_erased += len(subs) - len(keep)
        async with record_lock(tenant.id):
            regs = await fields.of(tenant.id, [s["lead_id"] for _, s in keep])
            decided = [decide_fields(crm, contact, sub, reg) for (contact, sub), reg in zip(keep, regs)]
            send = [sub for (_, sub), d in zip(keep, decided) if d.changed]
            sealed = await deps.sealer().seal([("lead.submitted", s) for s in send], int(time.time() * 1000))
            await deps.producer.send_many([(deps.topic(SUBMITTED), s["lead_id"].encode(),
                                            deps.codec.encode("lead.submitted", s), None) for s in sealed])
            # only once the leads are in Kafka: what the CRM holds, and the fields it won (not for
            # someone erased meanwhile: no record of them is made again)
            gone = await deps.do_not_contact().erased([(tenant.id, sub["lead_id"]) for _, sub in keep])
            await fields.put(tenant.id, {sub["lead_id"]: d.record for ((_, sub), d), g in zip(zip(keep, decided), gone)
                                         if not g})
            await fields.mark([(tenant.id, sub["lead_id"]) for ((_, sub), d), g in zip(zip(keep, decided), gone)
                               if d.ours_to_give and not g])
        done.produced += len(send)
        done.unchanged += len(keep) - len(send)
        done.cursor_ms = max(done.cursor_ms, max(c.modified_ms for c in page))
    return done


@dataclass
class Decided:
    """What one contact read changes: whether it is a change made in the CRM (produced), what its
    CRM record is to hold, and whether a field of ours won (to be written back to the CRM)."""
    changed: bool
    record: dict[str, str]
    ours_to_give: bool


def decide_fields(crm, contact: Contact, sub: dict, reg: dict[str, str]) -> Decided:
    """Per two-way field: a CRM change (a value other than the one we knew it held) wins or loses
    by the field's source of truth; a lost one leaves the lead's field as it is (the submission
    carries none) and ours goes back to the CRM. A contact the sync knows, with no CRM change in
    its fields (our own write echoed back, or a change of properties we do not map), is not produced."""
    changed, ours, record = "id" not in reg, False, {"id": contact.id}
    for prop, field in crm.properties.items():
        value, seen = contact.properties.get(prop) or "", reg.get(f"s:{prop}")
        if not crm_sets(value, seen):
            if seen is None:
                record[f"s:{prop}"] = value  # the CRM never set it: ours (if any) goes to it
                ours = ours or f"h:{prop}" in reg
            _keep_ours(sub, field)
            continue
        changed, record[f"s:{prop}"] = True, value
        held = Held.decode(reg[f"h:{prop}"]) if f"h:{prop}" in reg else None
        if change_wins(crm.truth.get(prop, "latest"), CRM, contact.modified_ms, held):
            record[f"h:{prop}"] = Held(value, contact.modified_ms, CRM).encode()
        else:
            _keep_ours(sub, field)
            ours = True
    return Decided(changed, record, ours)


def _keep_ours(sub: dict, field: str) -> None:
    """The submission leaves this field of the lead as it is (a phone is an address: kept)."""
    if field in ("first_name", "last_name"):
        sub[field] = None


def _submission(tenant, contact: Contact, ids: LeadIds) -> dict | None:
    """The lead.submitted a contact makes (None: not a lead we can take, e.g. no valid email)."""
    crm = tenant.crm
    fields = {field: contact.properties.get(prop) or None for prop, field in crm.properties.items()}
    try:
        lead = LeadIn.model_validate({"email": contact.email or None, **fields, "partner": crm.partner,
                                      "list": crm.list, "attribution": {"crm_id": contact.id}})
        event_id = derived_event_id(f"crm/{tenant.id}/{contact.id}/{contact.modified_ms}", "lead.submitted",
                                    contact.modified_ms)
        return build_submitted(lead, tenant, event_id, contact.modified_ms, SOURCE, strict=False, ids=ids)
    except (ValidationError, SubmissionError):
        return None
