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
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from channels.crm.hubspot import Contact, CrmError, HubSpot
from channels.dkim import DkimUnavailable, KeyLoader
from domain.identity import derived_event_id
from domain.lead_input import LeadIn
from domain.submission import SubmissionError, build_submitted
from projections.redis_crm import CrmStore
from streams.topics import SUBMITTED

log = logging.getLogger("leadstream.crm")
SOURCE = "crm"


@dataclass
class Polled:
    contacts: int = 0
    produced: int = 0
    refused_erased: int = 0
    invalid: int = 0
    cursor_ms: int = 0

    def __str__(self) -> str:
        return (f"ok: {self.contacts} contacts, {self.produced} leads, {self.refused_erased} erased, "
                f"{self.invalid} invalid")


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
                       refused=done.refused_erased + done.invalid, cursor_ms=done.cursor_ms)
    return str(done)


async def read_into_intake(deps, client: HubSpot, tenant, now_ms: int, cursor_ms: int) -> Polled:
    crm, done = tenant.crm, Polled(cursor_ms=cursor_ms)
    since = max(0, cursor_ms - crm.lookback_s * 1000)
    async for page in client.changed_since(since, sorted(crm.properties)):
        subs = []
        for contact in page:
            done.contacts += 1
            sub = _submission(tenant, contact)
            if sub is None:
                done.invalid += 1
            else:
                subs.append(sub)
        erased = await deps.do_not_contact().erased([(s["tenant"], s["lead_id"]) for s in subs])
        keep = [s for s, gone in zip(subs, erased) if not gone]
        done.refused_erased += len(subs) - len(keep)
        await deps.producer.send_many([(deps.topic(SUBMITTED), s["lead_id"].encode(),
                                        deps.codec.encode("lead.submitted", s), None) for s in keep])
        done.produced += len(keep)
        done.cursor_ms = max(done.cursor_ms, max(c.modified_ms for c in page))
    return done


def _submission(tenant, contact: Contact) -> dict | None:
    """The lead.submitted a contact makes (None: not a lead we can take, e.g. no valid email)."""
    crm = tenant.crm
    fields = {field: contact.properties.get(prop) or None for prop, field in crm.properties.items()}
    try:
        lead = LeadIn.model_validate({"email": contact.email or None, **fields, "partner": crm.partner,
                                      "list": crm.list, "attribution": {"crm_id": contact.id}})
        event_id = derived_event_id(f"crm/{tenant.id}/{contact.id}/{contact.modified_ms}", "lead.submitted",
                                    contact.modified_ms)
        return build_submitted(lead, tenant, event_id, contact.modified_ms, SOURCE, strict=False)
    except (ValidationError, SubmissionError):
        return None
