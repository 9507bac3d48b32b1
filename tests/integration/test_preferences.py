"""The preference page end to end on a private platform: a lead on two lists receives an
email, the test follows the "Manage this alert" link found in the delivered email and, through
the tracking front, pauses the list for two weeks (the planner's next instant comes after the
pause; a request planned before it is skipped as "paused"), leaves the list (no schedule
for it, the other list goes on) and leaves everything (unsubscribed). Replaying the lead
events folds the very state the intake saved."""
from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from domain.intake import LeadState
from domain.planning import daily_request
from domain.preferences import pause_end
from domain.schedule import local_date, next_due, send_id
from runtime.replay import fold_leads, read_topics
from runtime.replay_data_keys import topic_keys
from schemas.codec import default_codec
from stack.isolated import SEND_AGENTS, IsolatedPlatform
from streams.settings import get_settings, load_tenants
from streams.topics import LEAD_EVENTS
from tests.integration.conftest import wait_for
from tests.integration.test_sending import send_events, state, submit

S = get_settings()
BOOK = load_tenants(S.tenants_file)
CODEC = default_codec()
NY = "America/New_York"
FORM = {"content-type": "application/x-www-form-urlencoded"}
MAIL: dict = {}


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import smtp_sink
    folder = tmp_path_factory.mktemp("mail")
    smtp_port, _, stop_smtp = smtp_sink.start(port=0, folder=folder)
    MAIL["dir"] = folder
    env = {"LEADSTREAM_SMTP_PORT": str(smtp_port), "LEADSTREAM_MAIL_DIR": str(folder)}
    try:
        with IsolatedPlatform(redis_db=57, agents=SEND_AGENTS, env=env, fronts=("tracking",)) as p:
            p.poll_feeds()
            wait_for(lambda: p.redis.hlen("ls:jobs:jobsnearby") >= 6000, 60, what="the feeds' jobs in Redis")
            yield p
    finally:
        stop_smtp()


def mails_to(address: str) -> list[email.message.EmailMessage]:
    out = []
    for path in MAIL["dir"].glob("*.eml"):
        raw = path.read_bytes()
        if address.encode() in raw:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            if msg["To"] and address in msg["To"]:
                out.append(msg)
    return out


def due_of(p, lid: str, list_name: str) -> int | None:
    score = p.redis.zscore("ls:due:jobsnearby", f"{lid}|{list_name}")
    return int(score) if score is not None else None


def preference(p, lid: str, list_name: str) -> dict:
    return ((state(p, "jobsnearby", lid) or {}).get("preferences") or {}).get(list_name) or {}


def lead_events(p, lid: str, names: tuple[str, ...]) -> list[str]:
    from projections.clickhouse import connect
    rows = connect(S.clickhouse_host, S.clickhouse_port).execute(
        f"SELECT event_type FROM {p.settings.clickhouse_database}.events FINAL WHERE lead_id = %(l)s "
        f"AND event_type IN %(n)s ORDER BY occurred_at, event_type", {"l": lid, "n": names})
    return [r[0] for r in rows]


def test_pause_leave_the_list_and_leave_everything_through_the_link_in_the_email(iso):
    addr = f"prefs.{uuid.uuid4().hex[:8]}@example.com"
    person = {"email": addr, "first_name": "Pia", "partner": "indeed-xml", "location": {"zip": "10001", "country": "US"},
              "interests": {"keywords": ["nurse", "warehouse"], "categories": ["nursing"]}}
    [lid] = submit(iso, "jobsnearby", [{**person, "list": "daily-jobs"}])
    wait_for(lambda: (st := state(iso, "jobsnearby", lid)) and st["status"] == "accepted", 60, what="accepted")
    submit(iso, "jobsnearby", [{**person, "list": "warehouse"}])  # merged: the lead is on both lists
    wait_for(lambda: due_of(iso, lid, "daily-jobs") and due_of(iso, lid, "warehouse"), 60, what="both lists scheduled")
    d1, w1 = due_of(iso, lid, "daily-jobs"), due_of(iso, lid, "warehouse")

    # the delivered email's preference link: in both parts, a signed code, nothing personal
    [welcome] = wait_for(lambda: mails_to(addr), 60, what="the welcome email")
    html = welcome.get_body(("html",)).get_content()
    text = welcome.get_body(("plain",)).get_content()
    link = re.search(rf'<a href="({re.escape(iso.tracking_url)}/p/[0-9A-Za-z]+)"[^>]*>Manage this alert</a>', html).group(1)
    assert link in text and addr.split("@")[0] not in link and lid not in link
    page = httpx.get(link)
    assert page.status_code == 200 and "<h1>Manage Daily job alerts</h1>" in page.text and "Jobs Nearby" in page.text
    assert state(iso, "jobsnearby", lid)["preferences"] == {}  # looking changes nothing

    # what the planner would have asked for at the list's next instant, planned before the pause
    before = LeadState.from_dict(state(iso, "jobsnearby", lid))
    (name, planned), _ = daily_request(before, BOOK.tenants["jobsnearby"], "daily-jobs", d1, d1)
    assert name == "send.requested"

    # pause for two weeks (asked twice: the second changes nothing)
    asked_at = int(time.time() * 1000)
    for _ in range(2):
        r = httpx.post(link, content=b"action=pause&weeks=2", headers=FORM)
        assert r.status_code == 200 and "<h1>Paused</h1>" in r.text
    paused_until = wait_for(lambda: preference(iso, lid, "daily-jobs").get("paused_until_ms"), 60, what="the pause")
    assert paused_until in (pause_end(asked_at, 2), pause_end(asked_at + 60_000, 2))
    first_after = next_due(paused_until - 1, NY, "09:00", "daily")
    wait_for(lambda: due_of(iso, lid, "daily-jobs") == first_after, 30, what="the schedule moved past the pause")
    assert due_of(iso, lid, "warehouse") == w1  # the other list is untouched
    assert "Paused until" in httpx.get(link).text

    iso.produce("sends.bulk", [(lid.encode(), CODEC.encode("send.requested", planned))])
    skipped = wait_for(lambda: [e for e in send_events(iso, [planned["send_id"]]) if e[0] == "send.skipped"], 60,
                       what="the request planned before the pause, skipped")
    assert [e[3] for e in skipped] == ["paused"]
    iso.plan(max(d1, w1))  # the paused list's old instant: only the other list goes
    warehouse_sid = send_id("jobsnearby", lid, "warehouse", local_date(w1, NY))
    wait_for(lambda: [m for m in mails_to(addr) if m["X-Leadstream-Send"] == warehouse_sid], 60,
             what="the warehouse alert")
    time.sleep(3)
    sent = sorted(m["X-Leadstream-Send"] for m in mails_to(addr))
    assert sent == sorted([welcome["X-Leadstream-Send"], warehouse_sid]), sent

    # leave this list: out of the schedule; the warehouse list goes on
    r = httpx.post(link, content=b"action=leave_list", headers=FORM)
    assert r.status_code == 200 and "You have left Daily job alerts" in r.text
    wait_for(lambda: state(iso, "jobsnearby", lid)["lists"] == ["warehouse"], 60, what="the list left")
    wait_for(lambda: due_of(iso, lid, "daily-jobs") is None, 30, what="the list out of the schedule")
    w2 = due_of(iso, lid, "warehouse")
    assert w2 and w2 > w1
    iso.plan(w2)
    next_sid = send_id("jobsnearby", lid, "warehouse", local_date(w2, NY))
    # the warehouse list still goes: its next alert reaches the sender, which finds no job first
    # seen since the previous warehouse alert (the feeds are the same) and sends nothing empty:
    # skipped for that reason, not for the list left
    decided = wait_for(lambda: [e for e in send_events(iso, [next_sid]) if e[0] != "send.requested"], 60,
                       what="the next warehouse alert decided")
    assert [(e[0], e[3]) for e in decided] == [("send.skipped", "no_new_jobs")]
    time.sleep(3)
    assert len(mails_to(addr)) == 2 and due_of(iso, lid, "daily-jobs") is None

    # leave everything
    r = httpx.post(link, content=b"action=leave_all", headers=FORM)
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    wait_for(lambda: state(iso, "jobsnearby", lid)["status"] == "unsubscribed", 60, what="unsubscribed")
    wait_for(lambda: due_of(iso, lid, "warehouse") is None, 30, what="no list scheduled")
    assert iso.redis.sismember("ls:optout:jobsnearby", addr)
    changes = wait_for(lambda: (e := lead_events(iso, lid, ("lead.preferences_changed", "lead.unsubscribed")))
                       and len(e) >= 3 and e, 60, what="the decided events in ClickHouse")
    assert changes == ["lead.preferences_changed", "lead.preferences_changed", "lead.unsubscribed"]

    # replay: the lead events fold into the very state the intake saved
    deps = SimpleNamespace(settings=iso.settings, codec=CODEC, topic=lambda name: iso.prefix + name)
    _, messages = read_topics(deps, [iso.prefix + LEAD_EVENTS])
    keys = topic_keys(deps, read_topics)  # the addresses are sealed with the leads' data keys
    states, optouts, bad = fold_leads(deps, messages, lambda n: None, opened=keys.open)
    assert bad == 0 and ("jobsnearby", addr) in optouts
    assert states[("jobsnearby", lid)].to_dict() == state(iso, "jobsnearby", lid)


def test_a_person_in_chromium_changes_how_often_from_the_email(iso, tmp_path):
    """In a real browser: the delivered email opened, "Manage this alert" clicked, a rarer
    frequency chosen and saved; the lead's cadence for that list changes. Screenshots of the
    email, the page and the confirmation are kept next to the test's files."""
    import shutil

    from playwright.sync_api import sync_playwright
    addr = f"chrome.{uuid.uuid4().hex[:8]}@example.com"
    [lid] = submit(iso, "jobsnearby", [{"email": addr, "first_name": "Rosa", "partner": "indeed-xml",
                                        "list": "daily-jobs", "location": {"zip": "10001", "country": "US"}}])
    [welcome] = wait_for(lambda: mails_to(addr), 60, what="the welcome email")
    page_file = tmp_path / "mail.html"
    page_file.write_text(welcome.get_body(("html",)).get_content())
    shots = tmp_path / "shots"
    shots.mkdir()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 700, "height": 900})
        page.goto(page_file.as_uri())
        page.screenshot(path=shots / "email.png", full_page=True)
        with page.expect_navigation():
            page.get_by_role("link", name="Manage this alert").click()
        assert page.url.startswith(f"{iso.tracking_url}/p/")
        # the page names the list as the welcome did
        assert "You joined Daily job alerts at Jobs Nearby" in " ".join(welcome.get_body(("plain",)).get_content().split())
        assert page.get_by_role("heading", name="Manage Daily job alerts").is_visible()
        page.screenshot(path=shots / "preferences.png", full_page=True)
        page.get_by_label("Once a week", exact=False).check()
        with page.expect_navigation():
            page.get_by_role("button", name="Save how often").click()
        confirmation = page.locator("h1").inner_text()
        page.screenshot(path=shots / "saved.png", full_page=True)
        browser.close()
    print(f"screenshots: {shots}")
    assert confirmation == "Saved"
    cadence = wait_for(lambda: preference(iso, lid, "daily-jobs").get("cadence"), 60, what="the new cadence")
    assert cadence == "1_per_week"
    assert wait_for(lambda: lead_events(iso, lid, ("lead.preferences_changed",)), 60,
                    what="the change in ClickHouse") == ["lead.preferences_changed"]
