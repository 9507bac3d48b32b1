"""Two-way CRM fields and the engagement written back: which side's value a field keeps, what
goes out to the CRM, and how our own writes echoed back are told apart from a CRM user's change.
Pure.

Each field the CRM maps into a lead (a name) keeps one register per lead: its value, the time of
the change that set it and the side that made it. A change from either side replaces it when the
field's source of truth allows: "crm" (the CRM's changes always win; ours only fill a field the
CRM never set), "leadstream" (ours always win; the CRM's only fill a field we never set), or
"latest" (the later change by its own change time wins; the default).

A CRM change is told by comparing the contact's value with the value we last knew the CRM held
("seen": read from it, or written to it by us). Our own write comes back equal to what we wrote,
so it is no change and never re-applied; a value different from the seen one is a change made in
the CRM, at the contact's modification time (an upper bound of the field's own change time).
"""
from __future__ import annotations

from dataclasses import dataclass

CRM, OURS = "crm", "leadstream"
# what leadstream writes back on each contact (custom properties of the brand's CRM)
SCORE, LAST_OPEN, LAST_CLICK = "leadstream_score", "leadstream_last_open", "leadstream_last_click"
STATUS, UNSUBSCRIBED = "leadstream_status", "leadstream_unsubscribed"
CONVERSIONS, LAST_CONVERSION = "leadstream_conversions", "leadstream_last_conversion"
ENGAGEMENT_PROPERTIES = (SCORE, LAST_OPEN, LAST_CLICK, STATUS, UNSUBSCRIBED, CONVERSIONS, LAST_CONVERSION)


@dataclass(frozen=True)
class Held:
    """One field's register: its value, when it was changed and by which side."""
    value: str
    at_ms: int
    side: str

    def encode(self) -> str:
        return f"{self.at_ms}|{self.side}|{self.value}"

    @classmethod
    def decode(cls, raw: str) -> "Held":
        at, side, value = raw.split("|", 2)
        return cls(value, int(at), side)


def crm_changed(value: str, seen: str | None) -> bool:
    """Whether the contact's value is a change made in the CRM (not what we last knew it held)."""
    return seen is None or value != seen


def change_wins(truth: str, side: str, at_ms: int, held: Held | None) -> bool:
    """Whether a change from `side` at `at_ms` replaces the field's register."""
    if held is None or held.side == side:
        return held is None or at_ms >= held.at_ms
    if truth == side:
        return True
    if truth in (CRM, OURS):  # the other side is the truth: ours only fills what it never set
        return False
    return at_ms >= held.at_ms


def write_back(truth: str, held: Held | None, seen: str | None) -> str | None:
    """Our value of a two-way field that the CRM should be given (None: nothing to give). Where
    the CRM is the truth, ours only fills a field the CRM holds nothing in."""
    if held is None or held.side != OURS or held.value == (seen or ""):
        return None
    if truth == CRM and seen:
        return None
    return held.value


def crm_sets(value: str, seen: str | None) -> bool:
    """Whether a contact's value is a change made in the CRM that may win the field: a value the
    first read finds empty is the CRM never having set it (ours, if any, goes to the CRM)."""
    return crm_changed(value, seen) and not (seen is None and value == "")


@dataclass(frozen=True)
class Engagement:
    """What the CRM is told about one lead."""
    status: str
    score: int = 0
    last_open_ms: int = 0
    last_click_ms: int = 0
    conversions: int = 0
    last_conversion_ms: int = 0

    def properties(self) -> dict[str, str]:
        def when(ms: int) -> str:
            return str(ms) if ms else ""  # HubSpot datetime properties take ms since the epoch
        return {SCORE: str(self.score), LAST_OPEN: when(self.last_open_ms), LAST_CLICK: when(self.last_click_ms),
                STATUS: self.status, UNSUBSCRIBED: "true" if self.status == "unsubscribed" else "false",
                CONVERSIONS: str(self.conversions), LAST_CONVERSION: when(self.last_conversion_ms)}


def unwritten(props: dict[str, str], written: dict[str, str]) -> dict[str, str]:
    """The properties whose value differs from what we last wrote (nothing twice)."""
    return {k: v for k, v in props.items() if written.get(k) != v}


def cleared() -> dict[str, str]:
    """Everything we ever wrote on a contact, emptied (an erased person)."""
    return {k: "" for k in ENGAGEMENT_PROPERTIES}
