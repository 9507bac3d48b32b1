"""Erasure's pure parts: the keyed hash a do-not-contact list holds, and the erasure record.

An erased person leaves behind no address and no name, only:
- a keyed hash of their lead id (itself a hash of tenant, channel and address) under a
  per-tenant key derived from the platform's secret: a partner re-uploading them is refused,
  and nobody without the secret can test an address against the list;
- an anonymous id that replaces their lead id in the analytics rows (counts stay right: each
  erased person stays one person, but nobody can say which);
- the record of the erasure itself (who asked, when, why), without the personal data.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

HASH_HEX = 32
REASON_MAX = 500


@lru_cache(maxsize=1024)  # asked for every event an agent checks against the list
def tenant_key(secret: str, tenant: str) -> bytes:
    """The tenant's own hashing key: one tenant's list says nothing about another's."""
    return hmac.new(secret.encode(), f"dnc\x1f{tenant}".encode(), hashlib.sha256).digest()


def contact_hash(secret: str, tenant: str, lead_id: str) -> str:
    """The do-not-contact entry of a lead (the same for every address that makes this lead id)."""
    return hmac.new(tenant_key(secret, tenant), lead_id.encode(), hashlib.sha256).hexdigest()[:HASH_HEX]


def anonymous_id(entropy: bytes) -> str:
    """What replaces an erased lead's id in the analytics rows (random: derivable from nothing)."""
    return "erased-" + entropy.hex()[:24]


def erasure_event(event_id: str, tenant: str, now_ms: int, lead_id: str, channel: str, entry: str,
                  anonymous: str, erased_by: str, reason: str, source: str) -> dict:
    """privacy.subject_erased: the erasure's record, no address, no name."""
    return {"event_id": event_id, "tenant": tenant, "occurred_at": now_ms, "schema": "privacy.subject_erased@1",
            "causation_id": None, "source": source, "lead_id": lead_id, "channel": channel,
            "contact_hash": entry, "anonymous_id": anonymous, "erased_by": erased_by, "reason": reason}


# What the analytics row of an event about an already erased person keeps (the columns and what
# the rollups read: types, outcomes, providers, templates, experiments, money, the country):
# nothing that names, reaches or describes the person (address, names, ip, user agent, text,
# profile, properties, street-level location).
ANALYTICS_KEPT = ("event_id", "tenant", "occurred_at", "schema", "causation_id", "source", "channel", "partner",
                  "list", "status", "outcome", "reasons", "revision", "send_id", "provider", "reason", "is_bot",
                  "actor", "via", "template", "template_version", "variant", "experiment", "creative", "kind",
                  "slot", "cpc_cents", "revenue_cents", "intent", "bounce_type", "attempt", "trigger",
                  "job_source", "job_key", "position", "campaign", "code", "region", "carrier", "name")
LOCATION_KEPT = ("country", "state")


def anonymised_event(ev: dict, anonymous: str) -> dict:
    """An event about an erased person as the analytics may still hold it: counted, not named."""
    out = {k: ev[k] for k in ANALYTICS_KEPT if k in ev}
    location = ev.get("location")
    if isinstance(location, dict):
        out["location"] = {k: location[k] for k in LOCATION_KEPT if k in location}
    out["lead_id"] = anonymous
    out["erased"] = True
    return out
