"""The CRM's wire rules that do not depend on any I/O (HubSpot's public API shapes).

Webhooks (HubSpot "v3" request signatures): X-HubSpot-Signature-v3 is
base64(HMAC-SHA256(app secret, method + uri + body + timestamp)), the timestamp in ms from
X-HubSpot-Request-Timestamp; a request older than five minutes is refused. In the uri, a fixed
set of percent-encoded characters is decoded first (HubSpot's list, below).

Contacts search: at most 200 results a page, at most 10,000 results a query (a page beyond is
refused), at most 5 filter groups of at most 6 filters and 18 filters in all. Batch upsert: at
most 100 records a request.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_MAX_AGE_MS = 5 * 60 * 1000
SEARCH_PAGE_MAX = 200
SEARCH_CAP = 10_000
FILTER_GROUPS_MAX = 5
FILTERS_PER_GROUP_MAX = 6
FILTERS_MAX = 18
UPSERT_MAX = 100
# the percent-encodings HubSpot decodes in the URI before signing (request validation, v3)
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
            "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signing_uri(uri: str) -> str:
    """The URI as HubSpot signs it."""
    for enc, ch in _DECODED.items():
        uri = uri.replace(enc, ch).replace(enc.lower(), ch)
    return uri


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    message = method.upper().encode() + signing_uri(uri).encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signature_problem(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str | None,
                      signature: str | None, now_ms: int) -> str | None:
    """Why this request is not HubSpot's (None: it is): missing headers, too old, or a bad signature."""
    if not signature or not timestamp_ms:
        return "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required"
    if not timestamp_ms.isdigit():
        return "X-HubSpot-Request-Timestamp is not a time in ms"
    age = now_ms - int(timestamp_ms)
    if age > SIGNATURE_MAX_AGE_MS:
        return f"the request is {age // 1000}s old: older than 5 minutes is refused (a replay)"
    if age < -SIGNATURE_MAX_AGE_MS:
        return "the request's timestamp is more than 5 minutes ahead"
    if not hmac.compare_digest(signature_v3(secret, method, uri, body, timestamp_ms), signature):
        return "X-HubSpot-Signature-v3 does not match"
    return None


def asks_for_poll(events: list[dict], app_id: str) -> bool:
    """Whether a webhook's events name a change we did not make ourselves: our own writes come back
    as changeSource INTEGRATION from our app id, and reading them again would ping-pong."""
    return any(not (app_id and e.get("changeSource") == "INTEGRATION" and str(e.get("sourceId")) == app_id)
               for e in events)
