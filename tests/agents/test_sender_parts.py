"""The bulk sender works on a batch in parts split by lead: a person's messages stay in one
part in the order asked, and a retried batch splits the same way (each part's use case
recognises its own earlier claims)."""
from __future__ import annotations

import random

from agents.sender import parts_by_lead


def _msgs(n: int, leads: int, seed: int) -> list[tuple]:
    rnd = random.Random(seed)
    return [("sends.priority", 0, off, f"lead{rnd.randrange(leads)}".encode(), b"v%d" % off) for off in range(n)]


def test_each_leads_messages_are_in_one_part_in_their_order():
    msgs = _msgs(500, 40, 1)
    parts = parts_by_lead(msgs, 3)
    assert sorted(m for p in parts for m in p) == sorted(msgs)  # nothing lost, nothing twice
    home = {}
    for i, part in enumerate(parts):
        for m in part:
            assert home.setdefault(m[3], i) == i, f"{m[3]!r} in two parts"
        for key in {m[3] for m in part}:
            offsets = [m[2] for m in part if m[3] == key]
            assert offsets == sorted(offsets)
    assert all(parts), "40 leads left a part empty"


def test_the_same_batch_splits_the_same_way_and_one_part_is_the_batch():
    msgs = _msgs(200, 10, 2)
    assert parts_by_lead(msgs, 2) == parts_by_lead(list(msgs), 2)
    assert parts_by_lead(msgs, 1) == [msgs]
    assert parts_by_lead([("t", 0, 0, None, b"x")], 2) in ([[("t", 0, 0, None, b"x")], []],
                                                          [[], [("t", 0, 0, None, b"x")]])


def test_parts_are_even_when_every_lead_has_one_message():
    # parts were the CRC-32's parity of the key: uneven by chance (~250 +- 11 of 500), and a
    # part twice the size of the other keeps the batch waiting for it
    msgs = [("sends.bulk", 0, off, f"ab12cd34{off * 8:016x}".encode(), b"v") for off in range(500)]
    assert [len(p) for p in parts_by_lead(msgs, 2)] == [250, 250]
    assert [len(p) for p in parts_by_lead(msgs[:10], 4)] == [3, 3, 2, 2]
