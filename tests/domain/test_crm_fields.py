"""Two-way CRM fields: which side's change keeps a field, what is written back, and our own
write echoed back told apart from a CRM user's change (domain/crm_fields.py), and the intake
renaming a person only on a CRM's winning change (domain/intake.py)."""
from __future__ import annotations

import pytest

from domain.crm_fields import (CRM, ENGAGEMENT_PROPERTIES, OURS, Engagement, Held, change_wins, cleared,
                               crm_changed, crm_sets, unwritten, write_back)
from domain.intake import LeadState, evolve


def test_a_register_survives_its_text_form_even_with_bars_in_the_value():
    h = Held("Ann|Marie", 1_700_000_000_123, CRM)
    assert Held.decode(h.encode()) == h


@pytest.mark.parametrize("truth, side, at, held, wins", [
    ("latest", CRM, 10, None, True),                      # nothing held: any change fills it
    ("latest", CRM, 20, Held("a", 10, OURS), True),       # later wins
    ("latest", CRM, 5, Held("a", 10, OURS), False),       # earlier loses
    ("latest", OURS, 10, Held("a", 10, CRM), True),       # a tie goes to the newer arrival
    ("crm", OURS, 99, Held("a", 10, CRM), False),         # the CRM is the truth: ours never replaces its value
    ("crm", OURS, 99, None, True),                        # ...but fills a field the CRM never set
    ("crm", CRM, 1, Held("a", 10, OURS), True),           # the CRM's change wins even when older
    ("leadstream", CRM, 99, Held("a", 10, OURS), False),  # ours is the truth
    ("leadstream", OURS, 1, Held("a", 10, CRM), True),
    ("leadstream", CRM, 20, Held("a", 10, CRM), True),    # the CRM changing its own earlier value
    ("leadstream", CRM, 5, Held("a", 10, CRM), False),    # ...but not with an older one
])
def test_a_change_replaces_the_register_by_the_fields_source_of_truth(truth, side, at, held, wins):
    assert change_wins(truth, side, at, held) is wins


def test_our_own_write_coming_back_is_no_change_and_a_users_edit_is():
    assert not crm_changed("Ann", "Ann")       # what we wrote (or last read) comes back
    assert crm_changed("Anne", "Ann")          # a CRM user renamed her
    assert crm_changed("", None)               # never seen: the first read is a change
    assert crm_sets("Ann", None) and crm_sets("", "Ann")  # set, or emptied, by a CRM user
    assert not crm_sets("", None)              # a field the CRM never set: nothing to win with


def test_only_our_winning_value_that_the_crm_lacks_is_written_back():
    ours = Held("Ann", 10, OURS)
    assert write_back("latest", ours, "Anne") == "Ann"
    assert write_back("latest", ours, "Ann") is None          # the CRM holds it already
    assert write_back("crm", ours, "Anne") is None            # never push against the CRM's truth
    assert write_back("crm", ours, "") == "Ann"               # ...but fill what it holds nothing in
    assert write_back("latest", Held("Anne", 20, CRM), "") is None  # the CRM's own value
    assert write_back("leadstream", ours, None) == "Ann"      # a contact that never had it


def test_engagement_properties_and_only_what_changed_since_our_last_write():
    props = Engagement("unsubscribed", 7, 1000, 2000, 2, 3000).properties()
    assert set(props) == set(ENGAGEMENT_PROPERTIES)
    assert props["leadstream_unsubscribed"] == "true" and props["leadstream_score"] == "7"
    assert Engagement("accepted").properties()["leadstream_last_open"] == ""  # never opened: empty, not 0
    assert unwritten(props, props) == {}
    assert unwritten(props, {**props, "leadstream_score": "6"}) == {"leadstream_score": "7"}
    assert set(cleared()) == set(ENGAGEMENT_PROPERTIES) and set(cleared().values()) == {""}


def _state() -> LeadState:
    return LeadState("t", "L1", "email", "ann@example.com", "accepted", lists=["a"], partners=["p"],
                     first_name="Ann")


def test_a_resubmission_renames_only_when_it_carries_a_name():
    base = {"tenant": "t", "lead_id": "L1", "occurred_at": 5, "causation_id": "S2", "channel": "email",
            "partner": "crm", "list": "a", "attribution": {}, "status": "accepted", "outcome": "already_on_list"}
    assert evolve(_state(), "lead.resubmitted", {**base, "first_name": "Anne"}).first_name == "Anne"
    assert evolve(_state(), "lead.resubmitted", {**base, "first_name": None}).first_name == "Ann"
    assert evolve(_state(), "lead.resubmitted", base).first_name == "Ann"  # a v2 event: no name at all
