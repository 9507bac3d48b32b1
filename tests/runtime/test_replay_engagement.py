"""The hygiene agent's last-seen times and the engagement counters, folded from the topics the
way the replay writes them back (runtime/replay_engagement.py)."""
from __future__ import annotations

from domain.intake import LeadState
from runtime.replay_engagement import Counters, LastSeen, merged_counters, pruned_still_out

NOW = 1_796_000_000_000
DAY = 86_400_000


def ev(name: str, lead: str, at: int, **kw) -> tuple[str, dict]:
    return name, {"event_id": f"{name}-{lead}-{at}", "tenant": "t", "lead_id": lead, "channel": "email",
                  "occurred_at": at, "is_bot": False, "revision": 0, **kw}


def test_last_seen_follows_the_hygiene_agents_rule():
    seen = LastSeen()
    for name, e in [ev("lead.accepted", "A", 10), ev("lead.accepted", "A", 20),  # first acceptance counts
                    ev("lead.accepted", "B", 10), ev("lead.unsubscribed", "B", 30),
                    ev("engagement.opened", "B", 40),  # gone: an open does not bring B back
                    ev("engagement.clicked", "A", 50), ev("engagement.opened", "A", 45),  # only forward
                    ev("engagement.opened", "A", 60, is_bot=True),  # machines keep nobody alive
                    ev("lead.accepted", "C", 10), ev("lead.resubmitted", "C", 70)]:
        seen.fold(name, e)
    assert seen.sets == {"ls:lastseen:t:email": {"A": 50, "C": 70}}


def test_counters_are_the_engagement_agents_moves_and_a_revision_moves_a_click_to_the_machines():
    c = Counters(NOW)
    for name, e in [ev("engagement.opened", "A", NOW - DAY), ev("engagement.clicked", "A", NOW - 2 * DAY),
                    ev("engagement.clicked", "A", NOW - 2 * DAY + 5, is_bot=True),
                    ("engagement.clicked", {**ev("engagement.clicked", "A", NOW - 2 * DAY)[1], "revision": 1, "is_bot": True}),
                    ev("engagement.opened", "A", NOW - 9 * DAY)]:
        c.fold(name, e)
    fields = dict(c.leads["ls:eng:t:A"])
    assert fields == {"human_opens": 2, "human_clicks": 0, "machine_clicks": 2, "last_human_ms": NOW - DAY,
                      "last_human_open_ms": NOW - DAY, "last_human_click_ms": NOW - 2 * DAY}
    assert len(c.seen) == 4 and all(0 < left <= 7 * DAY for left in c.seen.values())  # the 9-day-old one is past


def test_merged_counters_never_lower_what_redis_holds_and_score_the_result():
    held = {"human_opens": 5, "human_clicks": 0, "score": 5}
    assert merged_counters(held, {"human_opens": 3, "human_clicks": 2}) == {"human_opens": 5, "human_clicks": 2, "score": 11}
    assert merged_counters({"human_opens": 5, "score": 5}, {"human_opens": 5}) == {"human_opens": 5, "score": 5}


def test_a_pruned_lead_is_kept_only_while_still_out_and_within_the_year():
    states = {("t", "A"): LeadState("t", "A", "email", "a@x", "unsubscribed"),
              ("t", "B"): LeadState("t", "B", "email", "b@x", "accepted")}
    name, a = ev("engagement.unsubscribed", "A", NOW - DAY, how="inactive")
    assert pruned_still_out(name, a, states, NOW) == ("ls:pruned:t:email", "A", NOW - DAY)
    assert pruned_still_out(*ev("engagement.unsubscribed", "B", NOW - DAY, how="inactive"), states, NOW) is None
    assert pruned_still_out(*ev("engagement.unsubscribed", "A", NOW - 400 * DAY, how="inactive"), states, NOW) is None
    assert pruned_still_out(*ev("engagement.unsubscribed", "A", NOW - DAY, how="link"), states, NOW) is None
