"""Engagement decisions (pure): hits and provider observations to events."""
from domain.bots import BotPolicy, SendActivity
from domain.engagement import Policy, decide_hit, decide_observation, engagement_counts, score
from domain.sms_replies import classify_reply

POLICY = Policy(bots=BotPolicy(), soft_bounce_limit=3, soft_bounce_window_ms=7 * 86_400_000, more_keywords=("MORE",))
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
T0 = 1_764_064_800_000


def hit(code="C1", kind="click", at=T0 + 60_000, ua=CHROME, slot="job", method="GET", eid=None):
    return {"event_id": eid or f"01KB0Z8YA1Q3ZK5J7M2N4P{code:>4}", "tenant": "jobsnearby", "occurred_at": at,
            "schema": "engagement.hit@1", "causation_id": "s1", "source": "tracking", "lead_id": "L1",
            "kind": kind, "method": method, "user_agent": ua, "ip": "203.0.113.9", "delivered_at": T0,
            "destination_url": "https://jobs.example/1", "send_id": "s1", "code": code, "slot": slot,
            "job_key": "jobsnearby:feedA:J1", "job_source": "feedA", "position": 1, "cpc_cents": 45,
            "list": "daily-jobs", "template": "t1", "campaign": "daily", "creative": ""}


def test_a_person_clicking_a_minute_later_is_human_and_carries_the_attribution():
    outs, act, recent = decide_hit(hit(), SendActivity(), POLICY, {})
    [(role, name, ev)] = outs
    assert (role, name) == ("engagement", "engagement.clicked")
    assert (ev["actor"], ev["is_bot"], ev["reason"], ev["revision"]) == ("human", False, "", 0)
    assert (ev["cpc_cents"], ev["job_source"], ev["destination_url"]) == (45, "feedA", "https://jobs.example/1")
    assert ev["event_id"] == hit()["event_id"]  # a redelivered hit decides the same event
    assert "C1" in recent and act.recent_clicks


def test_a_scanner_clicking_every_link_within_a_second_revises_the_first_click():
    outs1, act, recent = decide_hit(hit("C1", at=T0 + 60_000), SendActivity(), POLICY, {})
    outs2, act, recent = decide_hit(hit("C2", at=T0 + 60_300), act, POLICY, recent)
    assert outs1[0][2]["is_bot"] is False
    names = [(o[2]["code"], o[2]["is_bot"], o[2]["reason"], o[2]["revision"]) for o in outs2]
    assert ("C2", True, "burst", 0) in names and ("C1", True, "burst", 1) in names
    assert outs2[1][2]["event_id"] == outs1[0][2]["event_id"]
    assert engagement_counts("engagement.clicked", outs2[1][2]) == {"human_clicks": -1, "machine_clicks": 1}


def test_a_click_at_delivery_and_the_honeypot_are_machines():
    [(_, _, fast)], _, _ = decide_hit(hit(at=T0 + 500), SendActivity(), POLICY, {})
    assert (fast["is_bot"], fast["reason"]) == (True, "too_fast")
    [(_, _, trap)], _, _ = decide_hit(hit(slot="honeypot"), SendActivity(), POLICY, {})
    assert (trap["is_bot"], trap["reason"]) == (True, "honeypot")


def test_opens_from_a_scanner_count_as_machine_and_apple_proxy_as_proxy():
    [(_, name, ev)], _, _ = decide_hit(hit(kind="open", slot="pixel_top", ua="Mozilla/5.0 (compatible; BingPreview/1.0b)"),
                                      SendActivity(), POLICY, {})
    assert name == "engagement.opened" and ev["is_bot"] and ev["reason"] == "security_scanner:microsoft"
    proxied = hit(kind="open", slot="pixel_top", ua="Mozilla/5.0") | {"ip": "17.58.101.4"}
    [(_, _, ev)], _, _ = decide_hit(proxied, SendActivity(), POLICY, {})
    assert (ev["actor"], ev["reason"]) == ("proxy", "apple_mpp")
    assert engagement_counts("engagement.opened", ev) == {"machine_opens": 1}


def test_unsubscribe_post_requests_the_unsubscribe_and_get_only_shows_the_page():
    assert decide_hit(hit(kind="unsubscribe", slot="unsubscribe"), SendActivity(), POLICY, {})[0] == []
    outs, _, _ = decide_hit(hit(kind="unsubscribe", slot="unsubscribe", method="POST"), SendActivity(), POLICY, {})
    assert [(r, n) for r, n, _ in outs] == [("lead_input", "lead.unsubscribe_requested"),
                                            ("engagement", "engagement.unsubscribed")]
    assert outs[0][2]["reason"] == "link" and outs[1][2]["how"] == "one_click"


def obs(kind, **over):
    base = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RA8", "tenant": "jobsnearby", "occurred_at": T0, "schema": "webhook.observation@1",
            "causation_id": None, "source": "api:webhooks", "lead_id": "L1", "provider": "sendgrid", "kind": kind,
            "provider_event_id": "e1", "provider_message_id": "m1", "send_id": "s1", "channel": "email",
            "list": "daily-jobs", "template": "t1", "recipient": "a@example.com", "bounce_type": "", "reason": "",
            "url": "", "user_agent": "", "ip": "", "from_number": "", "to_number": "", "text": ""}
    return base | over


def test_hard_bounce_suppresses_at_once_soft_only_after_the_limit():
    hard = decide_observation(obs("bounced", bounce_type="hard"), 0, POLICY)
    assert [n for _, n, _ in hard] == ["send.bounced", "lead.unsubscribe_requested", "engagement.unsubscribed"]
    assert hard[1][2]["reason"] == "hard_bounce"
    assert [n for _, n, _ in decide_observation(obs("bounced", bounce_type="soft"), 2, POLICY)] == ["send.bounced"]
    third = decide_observation(obs("bounced", bounce_type="soft"), 3, POLICY)
    assert third[1][2]["reason"] == "soft_bounces"


def test_complaint_unsubscribes_and_delivery_is_a_send_fact():
    assert [n for _, n, _ in decide_observation(obs("complained"), 0, POLICY)] == [
        "engagement.complained", "lead.unsubscribe_requested", "engagement.unsubscribed"]
    [(role, name, ev)] = decide_observation(obs("delivered"), 0, POLICY)
    assert (role, name, ev["provider_id"]) == ("send_events", "send.delivered", "m1")


def test_sms_stop_reply_unsubscribes_an_ordinary_reply_does_not():
    stop = obs("reply", provider="twilio", channel="sms", text="Stop.", from_number="+15125550100")
    outs = decide_observation(stop, 0, POLICY, classify_reply("Stop."))
    assert [n for _, n, _ in outs] == ["engagement.replied", "lead.unsubscribe_requested", "engagement.unsubscribed",
                                       "send.requested"]
    assert outs[1][2]["reason"] == "sms_stop"
    answer = outs[3][2]
    assert (outs[3][0], answer["kind"], answer["trigger"], answer["channel"]) == ("priority", "triggered", "reply:stop", "sms")
    assert decide_observation(stop, 0, POLICY, classify_reply("Stop."))[3][2]["send_id"] == answer["send_id"]
    chat = obs("reply", text="Thanks, I will apply")
    assert [n for _, n, _ in decide_observation(chat, 0, POLICY, classify_reply(chat["text"]))] == ["engagement.replied"]


def test_score_weighs_human_clicks_and_ignores_machines():
    assert score({"human_clicks": 2, "human_opens": 1, "machine_clicks": 9}) == 7


def test_help_is_answered_and_more_asks_for_jobs_now():
    help_ = decide_observation(obs("reply", text="HELP"), 0, POLICY, classify_reply("HELP"))
    assert [(n, e.get("trigger")) for _, n, e in help_] == [("engagement.replied", None), ("send.requested", "reply:help")]
    more = decide_observation(obs("reply", text="more"), 0, POLICY, classify_reply("more", ("MORE",)))
    assert [(n, e.get("kind")) for _, n, e in more] == [("engagement.replied", None), ("send.requested", "more_jobs")]


def test_start_asks_to_resubscribe_and_is_confirmed():
    outs = decide_observation(obs("reply", text="START"), 0, POLICY, classify_reply("START"))
    assert [(n, e.get("reason"), e.get("trigger")) for _, n, e in outs] == [
        ("engagement.replied", None, None), ("lead.resubscribe_requested", "sms_start", None),
        ("send.requested", None, "reply:start")]


def test_a_group_unsubscribe_leaves_only_the_list_of_the_message():
    [(role, name, ev)] = decide_observation(obs("left_list", reason="asm_group_id 42"), 0, POLICY)
    assert (role, name) == ("lead_input", "lead.preferences_requested")
    assert (ev["action"], ev["list"], ev["send_id"], ev["lead_id"]) == ("leave_list", "daily-jobs", "s1", "L1")
    assert ev["event_id"] == decide_observation(obs("left_list"), 0, POLICY)[0][2]["event_id"]  # a retry decides it again
    assert decide_observation(obs("left_list", list=""), 0, POLICY) == []  # a message of no list: nothing to leave


def test_a_hit_whose_sealed_ip_did_not_open_is_still_decided_by_its_user_agent_and_timing():
    """The agent opens a sealed ip with the lead's key; one that does not open reads None."""
    [(_, _, person)] = decide_hit({**hit(), "ip": None}, SendActivity(), POLICY, {})[0]
    assert (person["actor"], person["is_bot"], person["ip"]) == ("human", False, "")
    scanner = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 BingPreview/1.0b"
    [(_, _, machine)] = decide_hit({**hit("C2", ua=scanner), "ip": None}, SendActivity(), POLICY, {})[0]
    assert machine["is_bot"] and machine["ip"] == ""
