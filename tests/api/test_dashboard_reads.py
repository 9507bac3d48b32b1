"""The dashboard's reads against the live stack: a lead submitted through the API, found by
its email or phone with its timeline in causal order; the message log and its filters; one
send's message composed again and compared with the mail the SMTP sink received; who may
ask (a brand admin of another tenant and a partner may not)."""
from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import datetime

import httpx
import pytest

from domain.identity import identity_phone
from tests.api.people import ANALYST, BRAND_ADMIN, OTHER_BRAND_ADMIN, PARTNER, signed_in
from tests.integration.conftest import auth, email_lead_id, lead_id, wait_for

TENANT, OTHER = "jobsnearby", "hireflow"
SENT = ("send.dispatched", "send.delivered", "send.bounced")
_CODE = re.compile(r"/([copu])/[0-9A-Za-z]+")


@pytest.fixture(scope="module")
def brand(settings):
    with signed_in(settings.api_url, BRAND_ADMIN) as c:
        yield c


def _event_types(ch, settings, lid: str) -> list[str]:
    return [t for (t,) in ch.execute(
        f"SELECT event_type FROM {settings.clickhouse_database}.events WHERE tenant = %(t)s AND lead_id = %(l)s",
        {"t": TENANT, "l": lid})]


@pytest.fixture(scope="module")
def lead(api, ch, settings, keys):
    return _sent_lead(api, ch, settings, keys)


def _sent_lead(api, ch, settings, keys) -> dict:
    """A new email lead on the warehouse list (it gets its welcome at once), sent and stored."""
    address = f"Dash.Reads.{uuid.uuid4().hex[:10]}@Example.com"
    r = api.post("/v1/leads", headers=auth(keys[TENANT]),
                 json={"email": f"  {address} ", "first_name": "Dana", "list": "warehouse", "partner": "ziprecruiter",
                       "location": {"zip": "10001", "country": "US"}})
    assert r.status_code == 202, r.text
    lid = r.json()["lead_id"]

    def decided_and_sent() -> bool:
        types = _event_types(ch, settings, lid)
        return "lead.accepted" in types and any(t in types for t in SENT)
    wait_for(decided_and_sent, 90, 0.5, "the lead's decision and welcome in ClickHouse")
    return {"lead_id": lid, "address": address, "event_id": r.json()["event_id"]}


def _lookup(client: httpx.Client, tenant: str = TENANT, **params) -> httpx.Response:
    return client.get(f"/v1/tenants/{tenant}/lookup", params=params)


def test_a_lead_is_found_by_its_email_with_its_timeline_newest_first(brand, lead):
    r = _lookup(brand, email=lead["address"].upper())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["lead_id"] == lead["lead_id"] == email_lead_id(TENANT, lead["address"])
    assert (body["channel"], body["address"], body["tenant"]) == ("email", lead["address"].lower(), TENANT)
    assert body["state"]["status"] == "accepted" and "warehouse" in body["lists"]
    assert body["state"]["lead_id"] == lead["lead_id"] and "applied" not in body["state"]
    on_list = next(s for s in body["subscription"]["lists"] if s["list"] == "warehouse")
    assert body["subscription"]["subscribed"] and on_list["subscribed"] and not on_list["left"]

    timeline = body["timeline"]
    types = [e["event_type"] for e in timeline]
    submitted = types.index("lead.submitted")
    assert timeline[submitted]["event_id"] == lead["event_id"]
    assert types.index("send.requested") < types.index("lead.accepted") < submitted  # newest first
    sent = next(i for i, t in enumerate(types) if t in SENT)
    assert sent < types.index("send.requested")
    times = [datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")) for e in timeline]
    assert times == sorted(times, reverse=True)
    assert all(e["machine"] is None for e in timeline if not e["event_type"].startswith("engagement."))
    dispatched = timeline[sent]
    assert dispatched["send_id"] and dispatched["provider"] and dispatched["summary"]
    assert timeline[submitted]["summary"] == "Submitted to warehouse by ziprecruiter"


def test_a_lead_is_found_by_its_phone_as_dialled_in_the_tenant_region(api, brand, keys, book):
    national = f"646{uuid.uuid4().int % 9_000_000 + 1_000_000}"
    r = api.post("/v1/leads", headers=auth(keys[TENANT]),
                 json={"phone": f"+1 ({national[:3]}) {national[3:6]}-{national[6:]}", "list": "sms-alerts",
                       "partner": "ziprecruiter", "consent": {"at": "2026-01-05T10:00:00Z", "text": "Texts OK"}})
    assert r.status_code == 202, r.text

    def known() -> dict | None:
        """The lookup once the read model (Redis) and its timeline (ClickHouse, written by the
        analytics agent, which may come later) both hold the lead."""
        answer = _lookup(brand, phone=national)
        doc = answer.json() if answer.status_code == 200 else None
        return doc if doc and doc["timeline"] else None
    found = wait_for(known, 60, 0.5, "the phone lead to be known, with its timeline")
    e164 = identity_phone(national, book.tenants[TENANT].validation.default_region)
    assert found["lead_id"] == r.json()["lead_id"] == lead_id(TENANT, "sms", e164)
    assert (found["channel"], found["address"]) == ("sms", e164)
    assert "lead.submitted" in [e["event_type"] for e in found["timeline"]]
    # the consent's wording is sealed in the events ClickHouse holds; the lookup opens it with the lead's key
    assert found["subscription"]["consent"] == {"at": "2026-01-05T10:00:00Z", "text": "Texts OK"}


@pytest.mark.parametrize("params, field", [({}, "(query)"), ({"email": "a@example.com", "phone": "+12125550100"},
                                                           "email"),
                                           ({"email": "not-an-address"}, "email"), ({"phone": "call me"}, "phone")])
def test_a_lookup_names_exactly_one_well_formed_address(brand, params, field):
    r = _lookup(brand, **params)
    assert r.status_code == 422, r.text
    assert r.json()["problems"][0]["field"] == field and r.json()["message"]


def test_an_unknown_address_is_404(brand):
    r = _lookup(brand, email=f"nobody.{uuid.uuid4().hex}@example.com")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_only_readers_of_the_tenant_may_look_up_or_read_messages(settings, api, keys, lead):
    paths = [f"/v1/tenants/{TENANT}/lookup?email={lead['address']}", f"/v1/tenants/{TENANT}/messages?limit=1"]
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as other, signed_in(settings.api_url, PARTNER) as partner, \
            signed_in(settings.api_url, ANALYST) as analyst:
        for path in paths:
            assert other.get(path).status_code == 403
            assert partner.get(path).status_code == 403
            assert analyst.get(path).status_code == 200
            assert api.get(path, headers=auth(keys[TENANT])).status_code == 200  # the tenant's ingest key
            assert api.get(path, headers=auth(keys[OTHER])).status_code == 403
            assert api.get(path).status_code == 401


def _page(client: httpx.Client, **params) -> dict:
    r = client.get(f"/v1/tenants/{TENANT}/messages", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _find_send(client: httpx.Client, send_id: str, pages: int = 20, **params) -> dict | None:
    """The send's row, following the log's pages."""
    cursor: dict = {}
    for _ in range(pages):
        page = _page(client, **params, **cursor)
        row = next((m for m in page["messages"] if m["send_id"] == send_id), None)
        if row or page["next"] is None:
            return row
        cursor = page["next"]
    return None


def _send_id(ch, settings, lid: str) -> str:
    (sid,), = ch.execute(f"SELECT any(visitParamExtractString(payload, 'send_id')) FROM "
                         f"{settings.clickhouse_database}.events WHERE tenant = %(t)s AND lead_id = %(l)s "
                         f"AND event_type = 'send.dispatched'", {"t": TENANT, "l": lid})
    return sid


def test_the_message_log_filters_by_status_and_finds_the_lead_send(brand, ch, settings, lead):
    sid = _send_id(ch, settings, lead["lead_id"])
    row = _find_send(brand, sid, status="dispatched", list="warehouse", channel="email", limit=200)
    assert row is not None, "the lead's welcome is not in the log"
    assert (row["status"], row["lead_id"], row["to"], row["kind"]) == (
        "dispatched", lead["lead_id"], lead["address"].lower(), "welcome")
    assert row["template"] == "welcome" and row["provider"]
    dispatched = _page(brand, status="dispatched", limit=50)["messages"]
    assert dispatched and {m["status"] for m in dispatched} == {"dispatched"}
    for status in ("skipped", "requested", "deferred"):
        assert {m["status"] for m in _page(brand, status=status, limit=50)["messages"]} <= {status}
    assert _page(brand, status="no-such-status")["messages"] == []
    assert _page(brand, provider="no-such-provider")["messages"] == []


def test_the_message_log_pages_newest_first_without_overlap(brand, api, ch, settings, keys, lead):
    _sent_lead(api, ch, settings, keys)  # with the module's lead: at least two sends, so two pages of one
    first = _page(brand, limit=1)
    assert first["next"] is not None
    second = _page(brand, limit=1, **first["next"])
    assert len(second["messages"]) == 1
    rows = first["messages"] + second["messages"]
    assert len({m["send_id"] for m in rows}) == len(rows)
    order = [(m["requested_at"], m["send_id"]) for m in rows]
    assert order == sorted(order, reverse=True)


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"before": "last tuesday"}])
def test_the_message_log_refuses_bad_parameters(brand, params):
    r = brand.get(f"/v1/tenants/{TENANT}/messages", params=params)
    assert r.status_code == 422 and r.json()["problems"], r.text


def _delivered_mail(settings, send_id: str) -> email.message.EmailMessage:
    path = settings.mail_dir / f"{send_id}@jobsnearby.example.eml"
    wait_for(path.exists, 30, 0.2, f"{path.name} at the SMTP sink")
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def _without_codes(text: str) -> str:
    return _CODE.sub(r"/\1/CODE", text.replace("\r\n", "\n")).strip()


def test_a_send_shows_its_events_and_the_message_as_delivered(brand, ch, settings, lead):
    sid = _send_id(ch, settings, lead["lead_id"])
    r = brand.get(f"/v1/tenants/{TENANT}/messages/{sid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["send_id"], body["status"], body["lead_id"]) == (sid, "dispatched", lead["lead_id"])
    types = [e["event_type"] for e in body["events"]]
    assert types.index("send.dispatched") < types.index("send.requested")
    message, mail = body["message"], _delivered_mail(settings, sid)
    assert body["rendering"]["composed_again"] and body["rendering"]["template_version_shown"] == \
        body["rendering"]["template_version_sent"]
    assert message["to"] == lead["address"].lower() and lead["address"].lower() in mail["To"].lower()
    assert message["subject"] == body["subject"] == str(mail["Subject"]) and "Dana" in message["subject"]
    assert _without_codes(message["text"]) == _without_codes(mail.get_body(("plain",)).get_content())
    assert "Dana" in message["html"] and message["from"] == str(mail["From"])


def test_a_preview_link_counts_nothing(brand, ch, settings, lead):
    sid = _send_id(ch, settings, lead["lead_id"])
    html = brand.get(f"/v1/tenants/{TENANT}/messages/{sid}").json()["message"]["html"]
    links = re.findall(re.escape(settings.tracking_base_url) + r"/[co]/[0-9A-Za-z]+", html)
    assert links
    for url in links[:3]:
        assert httpx.get(url, follow_redirects=False, timeout=10).status_code == 404


def test_the_log_and_the_send_agree_on_status(brand):
    for row in _page(brand, limit=10)["messages"]:
        r = brand.get(f"/v1/tenants/{TENANT}/messages/{row['send_id']}")
        if row["lead_id"].startswith("erased-"):  # an erased person's send: counted in the log, shown to nobody
            assert r.status_code == 404 and row["to"] is None and row["subject"] is None
            continue
        one = r.json()
        assert (one["status"], one["lead_id"], one["list"]) == (row["status"], row["lead_id"], row["list"])
        if one["status"] in ("requested", "deferred", "skipped", "failed"):
            assert one["message"] is None and one["rendering"]["notes"]


def test_a_send_of_another_tenant_or_unknown_is_404(settings, ch, lead):
    sid = _send_id(ch, settings, lead["lead_id"])
    with signed_in(settings.api_url, OTHER_BRAND_ADMIN) as other:
        assert other.get(f"/v1/tenants/{OTHER}/messages/{sid}").status_code == 404
        assert other.get(f"/v1/tenants/{TENANT}/messages/{sid}").status_code == 403
    with signed_in(settings.api_url, BRAND_ADMIN) as c:
        assert c.get(f"/v1/tenants/{TENANT}/messages/no-such-send").status_code == 404
