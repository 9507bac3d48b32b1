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


def test_an_event_on_the_topic_twice_is_counted_once_as_the_agent_counts_it():
    # a retried batch of the engagement agent produces the same decided events again
    c = Counters(NOW)
    opened, clicked = ev("engagement.opened", "A", NOW - DAY), ev("engagement.clicked", "A", NOW - DAY + 9)
    revised = ("engagement.clicked", {**clicked[1], "revision": 1, "is_bot": True})
    for name, e in [opened, clicked, opened, clicked, revised, revised, ev("engagement.opened", "A", NOW - 9 * DAY),
                    ev("engagement.opened", "A", NOW - 9 * DAY)]:
        c.fold(name, e)
    assert dict(c.leads["ls:eng:t:A"]) == {"human_opens": 2, "human_clicks": 0, "machine_clicks": 1,
                                           "last_human_ms": NOW - DAY + 9, "last_human_open_ms": NOW - DAY,
                                           "last_human_click_ms": NOW - DAY + 9}


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


def test_a_jobs_latest_event_decides_whether_it_is_live():
    from runtime.replay_jobs import latest_jobs
    got = latest_jobs([("job.posted", {"tenant": "t", "job_key": "a", "n": 1}), ("job.posted", {"tenant": "t", "job_key": "b"}),
                       ("job.updated", {"tenant": "t", "job_key": "a", "n": 2}), ("job.expired", {"tenant": "t", "job_key": "b"}),
                       ("job.posted", {"tenant": "u", "job_key": "a"})])
    assert got == {("t", "a"): ("job.updated", {"tenant": "t", "job_key": "a", "n": 2}),
                   ("t", "b"): ("job.expired", {"tenant": "t", "job_key": "b"}),
                   ("u", "a"): ("job.posted", {"tenant": "u", "job_key": "a"})}


def test_webhook_first_times_of_the_week_and_soft_bounces_within_each_brands_window():
    from runtime.replay_observed import observed_state

    def obs(n: int, at: int, kind: str = "delivered", bounce: str = "", provider: str = "twilio", tenant: str = "t"):
        return "webhook.observation", {"event_id": f"e{n}", "tenant": tenant, "lead_id": "A", "provider": provider,
                                       "provider_event_id": f"p{n % 10}", "occurred_at": at, "kind": kind,
                                       "bounce_type": bounce}
    events = [obs(1, NOW - DAY), obs(11, NOW - 2 * DAY),  # the same provider event twice: its first time
              obs(2, NOW - 8 * DAY),  # past the 7 days
              obs(3, NOW - DAY, "bounced", "soft"), obs(4, NOW - 3 * DAY, "bounced", "soft"),
              obs(5, NOW - DAY, "bounced", "hard"), obs(6, NOW - DAY, "bounced", "soft", tenant="u"),
              ("engagement.hit", {"event_id": "h"})]
    firsts, softs = observed_state(events, {"t": 2 * DAY, "u": 0}, NOW)
    assert firsts["ls:whfirst:twilio:p1"] == (NOW - 2 * DAY, 5 * DAY)
    assert "ls:whfirst:twilio:p2" not in firsts and len(firsts) == 5
    assert softs == {"ls:soft:t:A": ({"e3": NOW - DAY}, DAY)}


def test_source_counts_are_the_acceptances_of_the_last_two_days_on_every_list():
    from domain.tenants import TenantBook, hash_key
    from runtime.replay_intake import SourceCounts
    from tests.domain.conftest import make_tenant
    tenant = make_tenant(lists={"daily": {"channel": "email", "rules": {"intake": {"source_caps": {"feed": 2}}}},
                                "other": {"channel": "email"}})
    counts = SourceCounts(TenantBook(admin_key_sha256=[hash_key("k")], tenants={"acme": tenant}), NOW)

    def accepted(lead: str, at: int, lst: str = "daily") -> dict:
        return {"tenant": "acme", "lead_id": lead, "occurred_at": at, "partner": "feed", "list": lst}
    for name, ev in [("lead.accepted", accepted("A", NOW - 1000)), ("lead.accepted", accepted("B", NOW - 2000)),
                     ("lead.rejected", accepted("C", NOW - 1000)), ("lead.accepted", accepted("D", NOW - 1000, "other")),
                     ("lead.accepted", accepted("E", NOW - 3 * DAY)), ("lead.accepted", {**accepted("F", NOW), "tenant": "gone"})]:
        counts.fold(name, ev)
    import time
    day = time.strftime("%Y%m%d", time.gmtime((NOW - 1000) / 1000))
    # every list: a cap may have been set or lifted since those leads came
    assert dict(counts.counts) == {f"ls:srccap:acme:daily:feed:{day}": 2, f"ls:srccap:acme:other:feed:{day}": 1}
