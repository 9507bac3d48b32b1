"""The `schema` label an emitter writes into an event: "name@version" of the newest schema.

Pure (no file reads): the versions are listed here, and tests/schemas checks that they match
the newest version of every schema in schemas/, so a new version cannot be forgotten here.
"""
from __future__ import annotations

# events whose newest schema is not v1 (v2 added the lead's partner to send and engagement facts)
VERSIONS: dict[str, int] = {
    "send.requested": 4, "send.dispatched": 3, "send.failed": 2, "send.deferred": 2,
    "send.skipped": 3, "send.delivered": 2, "send.bounced": 2,
    "engagement.hit": 2, "engagement.opened": 2, "engagement.clicked": 2,
    "engagement.complained": 2, "engagement.replied": 2,
    "webhook.observation": 2, "webhook.received": 2, "lead.unsubscribed": 2,
    "lead.accepted": 2, "lead.rejected": 2, "lead.resubmitted": 3,  # v2: the carrier; the reactivated outcome; v3: a CRM's new name
}


def schema_label(name: str) -> str:
    """"lead.accepted@1", "send.dispatched@2"...: the label of the newest version of `name`."""
    return f"{name}@{VERSIONS.get(name, 1)}"
