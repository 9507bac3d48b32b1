"""The firsts of each message (pure): summed, the deltas count the messages opened / clicked
by people and by machines, at their first open or click, whatever order events arrive in."""
import itertools
from collections import Counter

from projections.engagement_firsts import Touch, firsts


def t(eid, at, machine=False, rev=0, send="s1", kind="click"):
    return Touch(send, kind, eid, rev, at, machine)


def fold(batches):
    """Feed batches in order; the net count per (at, actor) the rollups would hold."""
    held, total = [], Counter()
    for batch in batches:
        for deltas in firsts(held, batch).values():
            for at, actor, d in deltas:
                total[(at, actor)] += d
        held += batch
    return {k: v for k, v in total.items() if v}


def test_the_first_human_open_counts_once_and_later_opens_do_not():
    assert fold([[t("a", 10, kind="open")], [t("b", 20, kind="open"), t("c", 30, kind="open")]]) == {(10, "human"): 1}


def test_people_and_machines_are_counted_apart_per_message_and_kind():
    batch = [t("a", 10), t("b", 5, machine=True), t("c", 7, send="s2"), t("d", 8, kind="open")]
    assert fold([batch]) == {(10, "human"): 1, (5, "machine"): 1, (7, "human"): 1, (8, "human"): 1}


def test_an_earlier_open_reported_late_moves_the_first():
    assert fold([[t("b", 20, kind="open")], [t("a", 10, kind="open")]]) == {(10, "human"): 1}


def test_a_click_revised_to_a_machine_hands_the_first_to_the_next_human_click():
    first, later = t("a", 10), t("b", 40)
    assert fold([[first, later], [t("a", 10, machine=True, rev=1)]]) == {(40, "human"): 1, (10, "machine"): 1}
    # no other human click: the message is no longer clicked by a person
    assert fold([[first], [t("a", 10, machine=True, rev=1)]]) == {(10, "machine"): 1}


def test_a_late_older_revision_changes_nothing():
    assert fold([[t("a", 10, machine=True, rev=1)], [t("a", 10)]]) == {(10, "machine"): 1}


def test_any_arrival_order_and_batching_gives_the_same_sums():
    touches = [t("a", 10), t("b", 40), t("a", 10, machine=True, rev=1), t("c", 5, machine=True),
               t("d", 30, send="s2"), t("e", 25, send="s2"), t("e", 25, send="s2", machine=True, rev=1)]
    expected = {(40, "human"): 1, (5, "machine"): 1, (30, "human"): 1, (25, "machine"): 1}
    for order in itertools.permutations(touches):
        assert fold([list(order[:3]), list(order[3:])]) == expected
        assert fold([[x] for x in order]) == expected


def test_deltas_ride_on_the_last_new_touch_of_their_message():
    batch = [t("a", 10), t("x", 3, send="s2"), t("b", 5)]
    assert firsts([], batch) == {2: [(5, "human", 1)], 1: [(3, "human", 1)]}
    assert firsts([t("a", 1)], [t("b", 5)]) == {}
