"""What a dead letter of raw input keeps: the message with its personal values blanked.

The queue path's JSON (a lead, a product event) is personal data written clear by a partner.
When the platform refuses one, the dead letter says why and keeps the message's shape (its
field names, the tenant, list, partner, event name) for the partner to fix it, but no value that
could name or locate a person: an erasure could not reach it there. A message that is not a
JSON object cannot be told apart: nothing of it is kept.
"""
from __future__ import annotations

import orjson

BLANK = "[redacted]"
# values a partner needs to see and that name nobody; every other value (an address, a name, a
# location, an attribution, a property, a misspelt field's) is blanked, the field names kept
KEPT = frozenset({"tenant", "partner", "list", "name", "at", "idempotency_key", "country", "lead_id"})


def redacted_json(value: bytes | None) -> bytes:
    """The JSON object with every value outside KEPT blanked; b"" when it is not a JSON object."""
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return b""
    if not isinstance(doc, dict):
        return b""
    return orjson.dumps(_blanked(doc, None))


def _blanked(obj, key: str | None):
    if isinstance(obj, dict):
        return {k: _blanked(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_blanked(v, key) for v in obj]
    return obj if obj is None or key in KEPT else BLANK
