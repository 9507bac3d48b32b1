"""The lead's partner travels with everything that happens to it: send requests (daily and
welcome), what the sender decides, tracked links, opens and clicks, provider facts, SMS
replies and the unsubscribe, so that a partner's analytics can be confined to its leads."""
from datetime import datetime, timezone

from domain.bots import SendActivity
from domain.compose import compose_email, compose_sms
from domain.engagement import decide_hit, decide_observation
from domain.intake import LeadState, decide_unsubscribe, source_partner
from domain.planning import daily_request, welcome_request
from domain.sending import send_event
from domain.sms_replies import classify_reply
from tests.domain.conftest import make_tenant
from tests.domain.test_compose import email_ctx, sms_ctx, store  # noqa: F401  (fixture)
from tests.domain.test_engagement import POLICY, hit

TENANT = make_tenant(lists={"daily": {"channel": "email", "send_time": "09:00", "welcome": True}})


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1000)


def lead(partners=("feed", "other")) -> LeadState:
    return LeadState("acme", "L1", "email", "ann@example.com", "accepted", lists=["daily"],
                     partners=list(partners), timezone="America/New_York")


def test_the_first_partner_that_sent_the_lead_is_its_source():
    assert source_partner(lead()) == "feed"
    assert source_partner(lead(partners=())) == ""


def test_daily_and_welcome_requests_carry_the_partner_and_so_does_every_sender_outcome():
    due = ms("2026-11-26T14:00:00")
    (_, req), _ = daily_request(lead(), TENANT, "daily", due, due)
    assert req["partner"] == "feed" and req["schema"] == "send.requested@4"
    (_, skipped), _ = daily_request(lead(), TENANT, "daily", due, due + 7 * 3600 * 1000)
    assert skipped["partner"] == "feed"
    accepted = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6R8S", "tenant": "acme", "occurred_at": due,
                "lead_id": "L1", "channel": "email", "address": "ann@example.com", "list": "daily",
                "timezone": "America/New_York", "partner": "feed"}
    _, welcome = welcome_request(accepted, TENANT, due)
    assert welcome["partner"] == "feed"
    for kind in ("send.dispatched", "send.failed", "send.deferred", "send.skipped"):
        name, ev = send_event(kind, {**req, "tenant": "acme"}, due, reason="x")
        newest = 3 if kind in ("send.dispatched", "send.skipped") else 2  # v3: the experiment arm
        assert ev["partner"] == "feed" and ev["schema"] == f"{kind}@{newest}"
    _, old = send_event("send.skipped", {k: v for k, v in req.items() if k != "partner"}, due, reason="x")
    assert old["partner"] == ""  # a request written before partners were carried


def test_tracked_links_opens_and_clicks_carry_the_partner(store):  # noqa: F811
    mail = compose_email(email_ctx(store, partner="feed"))
    sms = compose_sms(sms_ctx(store, partner="feed"))
    assert {rec.partner for rec in mail.links + sms.links} == {"feed"}
    outs, _, _ = decide_hit(hit() | {"partner": "feed"}, SendActivity(), POLICY, {})
    assert outs[0][2]["partner"] == "feed" and outs[0][2]["schema"] == "engagement.clicked@2"
    opened, _, _ = decide_hit(hit(kind="open", slot="pixel_top") | {"partner": "feed"}, SendActivity(), POLICY, {})
    assert opened[0][2]["partner"] == "feed"


def _observation(kind: str, **over) -> dict:
    base = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RA8", "tenant": "acme", "occurred_at": ms("2026-11-26T15:00:00"),
            "schema": "webhook.observation@2", "causation_id": None, "source": "api:webhooks", "lead_id": "L1",
            "provider": "sendgrid", "kind": kind, "provider_event_id": "e1", "provider_message_id": "m1",
            "send_id": "s1", "channel": "email", "list": "daily", "template": "t1", "recipient": "ann@example.com",
            "bounce_type": "", "reason": "", "url": "", "user_agent": "", "ip": "", "from_number": "",
            "to_number": "", "text": "", "partner": "feed"}
    return base | over


def test_provider_facts_complaints_and_replies_carry_the_partner():
    for kind in ("delivered", "bounced", "complained", "opened", "clicked"):
        outs = decide_observation(_observation(kind), 0, POLICY)
        facts = [ev for _, name, ev in outs if name.startswith(("send.", "engagement.c", "engagement.o"))]
        assert facts and all(ev["partner"] == "feed" for ev in facts), kind
    reply = _observation("reply", channel="sms", text="MORE", from_number="+15125550100")
    outs = decide_observation(reply, 0, POLICY, classify_reply("MORE", POLICY.more_keywords))
    assert {name: ev["partner"] for _, name, ev in outs} == {"engagement.replied": "feed", "send.requested": "feed"}


def test_the_unsubscribe_carries_the_leads_partner():
    req = {"event_id": "01KB0Z8YA1Q3ZK5J7M2N4P6RB1", "tenant": "acme", "occurred_at": ms("2026-11-26T15:00:00"),
           "lead_id": "L1", "reason": "link"}
    [(name, ev)] = decide_unsubscribe(req, lead(), "agent:intake")
    assert (name, ev["partner"], ev["schema"]) == ("lead.unsubscribed", "feed", "lead.unsubscribed@2")
