"""The lead-id migration's plan (runtime/rekey.py): every lead's new id from its readable
address (or, unreadable, from its old id), the leads' wrapped data keys as privacy.keys holds
them, who is erased, and the keys to make for leads sealed for the first time."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from domain.identity import LeadIds, identity_email, identity_phone, legacy_lead_id, new_event_id
from domain.rekeying import MIGRATION
from domain.sealing import (KEY_BYTES, NONCE_BYTES, SealError, field_aad, has_clear, is_sealed, key_aad, open_sealed,
                            parse_key_ring, unwrap, wrap)
from runtime.deps import Deps
from runtime.rekey_io import Kafka, flushed
from schemas.codec import DecodeError
from streams.topics import DATA_KEYS, ERASURES

ADDRESSED = ("lead.submitted", "lead.accepted", "lead.rejected")


@dataclass
class Plan:
    ids: dict[str, str] = field(default_factory=dict)  # old lead id -> new
    keys: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (tenant, id) -> wrapped; None: destroyed
    erased: set[tuple[str, str]] = field(default_factory=set)
    need_key: set[tuple[str, str]] = field(default_factory=set)  # clear personal fields, no key
    resolved: int = 0
    already_keyed: int = 0
    unresolved: int = 0


# -- the plan: every lead's new id, and its data key -------------------------------------------

def plan_ids(deps: Deps, kafka: Kafka, topics: list[str], ids: LeadIds, saved: dict[str, str]) -> Plan:
    """Every lead's new id (`saved`: the ones an interrupted run planned), their keys, who is erased."""
    plan = Plan(ids=dict(saved))
    _, ring = parse_key_ring(deps.settings.kek_ring)
    seen: dict[str, str] = {}  # every lead id found -> its tenant
    addressed: list[tuple[str, str, str, dict]] = []
    for topic in topics:
        for m in kafka.read(deps.topic(topic)):
            if topic == DATA_KEYS:
                _note_key(plan, m.key(), m.value(), deps)
                continue
            ev = decoded(deps, m.value())
            if ev is None or "lead_id" not in ev[1] or not ev[1].get("lead_id"):
                continue
            name, body = ev
            seen.setdefault(body["lead_id"], body["tenant"])
            if topic == ERASURES:
                plan.erased.add((body["tenant"], body["lead_id"]))
            if name in ADDRESSED:
                addressed.append((name, body["tenant"], body["lead_id"], body))
            if has_clear(name, body):
                plan.need_key.add((body["tenant"], body["lead_id"]))
    for name, tenant, lead, body in addressed if not saved else ():
        if lead not in plan.ids:
            _resolve(deps, plan, ids, ring, tenant, lead, body, name)
    for lead, tenant in seen.items() if not saved else ():
        if lead not in plan.ids:
            plan.ids[lead] = ids.of_unread(tenant, lead)
            plan.unresolved += 1
    plan.need_key = {k for k in plan.need_key if _wrapped(plan, k) is None and not is_destroyed(plan, k)}
    return plan


def decoded(deps: Deps, value: bytes | None) -> tuple[str, dict] | None:
    try:
        return deps.codec.decode(value) if value else None
    except DecodeError:
        return None


def _note_key(plan: Plan, key: bytes | None, value: bytes | None, deps: Deps) -> None:
    if key is None:
        return
    tenant, _, lead = key.decode().rpartition("/")
    if value is None:
        plan.keys[(tenant, lead)] = None
        return
    ev = decoded(deps, value)
    if ev is not None:
        plan.keys[(tenant, lead)] = ev[1]["wrapped"]


def _resolve(deps: Deps, plan: Plan, ids: LeadIds, ring, tenant: str, lead: str, ev: dict, name: str) -> None:
    """The lead's new id from its address, if the address reads (clear, or opened with its key)."""
    address = ev.get("address")
    if is_sealed(address):
        dek = dek_of(plan, ring, (tenant, lead))
        if dek is None:
            return
        try:
            address = open_sealed(dek, address, field_aad(tenant, lead, f"{name}.address"))
        except SealError:
            return
    if not address:
        return
    brand = deps.tenants.tenants.get(tenant)
    region = brand.validation.default_region if brand else "US"
    identity = identity_email(address) if ev["channel"] == "email" else identity_phone(address, region)
    if ids.of(tenant, ev["channel"], identity) == lead:
        plan.ids[lead] = lead
        plan.already_keyed += 1
    elif legacy_lead_id(tenant, ev["channel"], identity) == lead:
        plan.ids[lead] = ids.of(tenant, ev["channel"], identity)
        plan.resolved += 1


def _wrapped(plan: Plan, k: tuple[str, str]) -> str | None:
    w = plan.keys.get(k)
    if w is None and k[1] in plan.ids:  # privacy.keys already rewritten by an interrupted run
        w = plan.keys.get((k[0], plan.ids[k[1]]))
    return w


def is_destroyed(plan: Plan, k: tuple[str, str]) -> bool:
    new = (k[0], plan.ids.get(k[1], k[1]))
    return k in plan.erased or new in plan.erased or plan.keys.get(k, "") is None or plan.keys.get(new, "") is None


def dek_of(plan: Plan, ring, k: tuple[str, str]) -> bytes | None:
    w = plan.keys.get(k)
    lead = k[1]
    if w is None and lead in plan.ids:
        w, lead = plan.keys.get((k[0], plan.ids[lead])), plan.ids[lead]
    if not w:
        return None
    try:
        return unwrap(ring, w, key_aad(k[0], lead))
    except SealError:
        return None


# -- keys made for leads sealed for the first time ---------------------------------------------

def mint_keys(deps: Deps, kafka: Kafka, plan: Plan) -> int:
    """A data key for each lead with clear personal fields and none, durable before it is used."""
    if not plan.need_key:
        return 0
    current, ring = parse_key_ring(deps.settings.kek_ring)
    p, now = kafka.producer(), int(time.time() * 1000)
    for tenant, lead in sorted(plan.need_key):
        w = wrap(current, ring[current], os.urandom(NONCE_BYTES), os.urandom(KEY_BYTES), key_aad(tenant, lead))
        ev = {"event_id": new_event_id(now, os.urandom(10)), "tenant": tenant, "occurred_at": now,
              "schema": "privacy.data_key@1", "causation_id": None, "source": "migration:" + MIGRATION,
              "lead_id": lead, "wrapped": w}
        p.produce(deps.topic(DATA_KEYS), deps.codec.encode("privacy.data_key", ev), f"{tenant}/{lead}".encode())
        plan.keys[(tenant, lead)] = w
    flushed(p, "the new data keys")
    return len(plan.need_key)
