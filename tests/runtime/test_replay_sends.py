"""Which sends get their at-most-once mark back after a Redis wipe (runtime/replay_sends.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from projections.redis_sends import MARK_TTL_S
from runtime.replay_sends import settled_sends

NOW = 1_796_450_000_000


def ev(sid: str, at_ms: int, **more) -> dict:
    return {"event_id": f"e-{sid}-{at_ms}", "send_id": sid,
            "occurred_at": datetime.fromtimestamp(at_ms / 1000, timezone.utc), **more}


def test_dispatched_and_failed_sends_of_the_marks_lifetime_come_back_with_times_in_ms():
    got = settled_sends([("send.dispatched", ev("a", NOW - 1000, provider="smtp")),
                         ("send.failed", ev("b", NOW - 5000)),
                         ("send.deferred", ev("c", NOW - 10)),
                         ("send.skipped", ev("d", NOW - 10)),
                         ("send.dispatched", ev("old", NOW - MARK_TTL_S * 1000))], NOW)
    assert set(got) == {"a", "b"}
    assert got["a"] == ("send.dispatched", {"event_id": f"e-a-{NOW - 1000}", "send_id": "a",
                                            "occurred_at": NOW - 1000, "provider": "smtp"})
    assert got["b"][0] == "send.failed"


def test_a_dispatch_wins_over_a_failure_of_the_same_send_in_either_order():
    for order in ((("send.failed", ev("x", NOW - 9)), ("send.dispatched", ev("x", NOW - 5))),
                  (("send.dispatched", ev("x", NOW - 5)), ("send.failed", ev("x", NOW - 1)))):
        assert settled_sends(list(order), NOW)["x"][0] == "send.dispatched"


def req(sid: str, attempt: int, not_before: int | None, channel: str = "email", kind: str = "welcome") -> dict:
    return {"event_id": f"r-{sid}-{attempt}", "send_id": sid, "lead_id": f"L-{sid}", "attempt": attempt,
            "not_before": None if not_before is None else datetime.fromtimestamp(not_before / 1000, timezone.utc),
            "channel": channel, "kind": kind}


def test_only_each_sends_latest_attempt_not_acted_on_waits_again():
    from runtime.replay_sends import waiting_retries
    later = NOW + 3_600_000
    rows = [(b"L-a", b"a1", req("a", 1, NOW - 10)), (b"L-a", b"a2", req("a", 2, later)),  # deferred twice
            (b"L-b", b"b1", req("b", 1, later)),                                          # acted on
            (b"L-c", b"c1", req("c", 1, NOW - 9 * 86_400_000))]                           # past the queue's TTL
    got = waiting_retries(rows, acted_on={"r-b-1", "r-a-1"}, now_ms=NOW)
    assert [(i, due) for i, due, _ in got] == [("r-a-2", later)]
    role, key, value = got[0][2].split(b"\n", 2)
    assert (key, value) == (b"L-a", b"a2") and role in (b"priority", b"bulk")
