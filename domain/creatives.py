"""Rotating ad creatives for a list: a weighted pick that depends only on the send id."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Creative:
    """One ad shown in a message's creative block; url is where its tracked link goes."""

    id: str
    headline: str
    url: str
    body: str = ""
    cta: str = "Learn more"
    image_url: str = ""  # a static image; must carry no personal data
    weight: int = 1  # relative share of sends; 0 pauses the creative
    cpc_cents: int = 0


def pick_creative(creatives: list[Creative] | tuple[Creative, ...], send_id: str) -> Creative:
    """The creative for this send: weighted, and the same every time for the same send id."""
    live = sorted((c for c in creatives if c.weight > 0), key=lambda c: c.id)
    if not live:
        raise ValueError("no creative with a positive weight to pick from")
    # sha256 rather than hash(): Python's string hash changes per process, and a re-send
    # composed by another worker must pick the same creative. Sorting by id keeps the pick
    # stable when the tenant file lists creatives in another order.
    ticket = int.from_bytes(hashlib.sha256(send_id.encode("utf-8")).digest()[:8], "big")
    ticket %= sum(c.weight for c in live)
    for c in live:
        if ticket < c.weight:
            return c
        ticket -= c.weight
    raise AssertionError("unreachable: ticket is below the total weight")
