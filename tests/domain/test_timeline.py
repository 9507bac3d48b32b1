"""domain/timeline.py: entries, the machine flag, and causal order within one millisecond."""
from __future__ import annotations

from domain.timeline import EventRow, causal_depths, newest_first, timeline_entry


def row(event_id: str, event_type: str, at_ms: int, cause: str = "", **payload) -> EventRow:
    return EventRow(event_id, event_type, at_ms, payload.pop("channel", "email"), payload.pop("list", "daily"),
                    "", "", payload.pop("reasons", []), cause, payload)


def test_events_of_one_millisecond_come_after_their_causes():
    submitted = row("Z1", "lead.submitted", 1000)
    accepted = row("A2", "lead.accepted", 1000, "Z1")
    requested = row("M3", "send.requested", 1000, "A2")
    dispatched = row("B4", "send.dispatched", 1500, "M3")
    shuffled = [accepted, dispatched, submitted, requested]
    assert [r.event_type for r in newest_first(shuffled)] == [
        "send.dispatched", "send.requested", "lead.accepted", "lead.submitted"]


def test_self_caused_and_circular_events_still_order():
    click = row("C1", "engagement.clicked", 5, "C1")  # engagement events name themselves as cause
    a, b = row("A", "lead.accepted", 7, "B"), row("B", "lead.accepted", 7, "A")
    depths = causal_depths([click, a, b])
    assert depths["C1"] == 0 and {depths["A"], depths["B"]} == {0, 1}
    assert [r.event_id for r in newest_first([click, a, b])][-1] == "C1"


def test_opens_and_clicks_say_person_or_machine_and_other_events_say_nothing():
    bot = timeline_entry(row("E1", "engagement.clicked", 1, is_bot=True, reason="security_scanner:microsoft",
                             slot="job", position=2, send_id="s1"))
    person = timeline_entry(row("E2", "engagement.opened", 2, is_bot=False, send_id="s1"))
    sent = timeline_entry(row("E3", "send.dispatched", 3, provider="smtp", send_id="s1"))
    assert (bot["machine"], person["machine"], sent["machine"]) == (True, False, None)
    assert bot["summary"] == "Clicked job #2 by a machine (security_scanner:microsoft)"
    assert person["summary"] == "Opened by the person"
    assert (sent["provider"], sent["send_id"], sent["occurred_at"]) == ("smtp", "s1", "1970-01-01T00:00:00.003000Z")


def test_an_unknown_event_type_is_summarised_by_its_name():
    assert timeline_entry(row("X", "custom.thing", 1))["summary"] == "custom.thing"
    assert timeline_entry(row("R", "lead.rejected", 1, reasons=["invalid_email"]))["summary"] == \
        "Rejected: invalid_email"
