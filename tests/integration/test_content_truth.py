"""What the messages say is true, end to end on a private platform (stack.isolated): a welcome
that says welcome, a daily alert with each job once and only new ones, and no alert at all
(skipped, with its reason) when nothing new matches. Read where the messages land: the SMTP
server and the provider stand-ins of this platform alone."""
from __future__ import annotations

import email
import email.policy
import os
import re
import time
import uuid

import orjson
import pytest

from domain.identity import new_event_id
from domain.jobs import fingerprint, job_from_dict
from domain.lead_input import LeadIn
from domain.schedule import local_date, send_id
from domain.submission import build_submitted
from schemas.codec import default_codec
from stack.isolated import IsolatedPlatform
from streams.settings import get_settings, load_tenants
from tests.integration.conftest import IDS, wait_for

S = get_settings()
BOOK = load_tenants(S.tenants_file)
CODEC = default_codec()
DAY_MS = 86_400_000
MAIL: dict = {}


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import providers, smtp_sink
    folder = tmp_path_factory.mktemp("mail")
    smtp_port, _, stop_smtp = smtp_sink.start(port=0, folder=folder)
    providers_url, stop_providers = providers.start(port=0)
    MAIL.update(dir=folder, providers=providers_url)
    env = {"LEADSTREAM_SMTP_PORT": str(smtp_port), "LEADSTREAM_PROVIDERS_URL": providers_url,
           "LEADSTREAM_MAIL_DIR": str(folder)}
    with IsolatedPlatform(redis_db=50, env=env, keep=bool(os.environ.get("KEEP_ISO"))) as p:
        p.poll_feeds()
        wait_for(lambda: p.redis.hlen("ls:jobs:jobsnearby") >= 6000, 60, what="the feeds' jobs in Redis")
        yield p
    stop_providers()
    stop_smtp()


def submit(p: IsolatedPlatform, tenant: str, body: dict) -> str:
    t, now = BOOK.tenants[tenant], int(time.time() * 1000)
    sub = build_submitted(LeadIn.model_validate(body), t, new_event_id(now, os.urandom(10)), now, "test", ids=IDS)
    p.produce("leads.submitted", [(sub["lead_id"].encode(), CODEC.encode("lead.submitted", sub))])
    return sub["lead_id"]


def mails_to(address: str) -> list[email.message.EmailMessage]:
    out = []
    for path in MAIL["dir"].glob("*.eml"):
        raw = path.read_bytes()
        if address.encode() in raw:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            if msg["To"] and address in msg["To"]:
                out.append(msg)
    return out


def send_events(p, send_ids: list[str]) -> list[tuple]:
    from projections.clickhouse import connect
    ch = connect(S.clickhouse_host, S.clickhouse_port)
    return ch.execute(f"SELECT event_type, visitParamExtractString(payload, 'send_id') AS sid, "
                      f"visitParamExtractString(payload, 'reason') "
                      f"FROM {p.settings.clickhouse_database}.events FINAL WHERE event_type LIKE 'send.%%' "
                      f"AND sid IN %(ids)s ORDER BY occurred_at", {"ids": tuple(send_ids)})


def due_of(p, tenant: str, lid: str, list_name: str) -> int:
    return int(wait_for(lambda: p.redis.zscore(f"ls:due:{tenant}", f"{lid}|{list_name}"), 60,
                        what="the lead in the schedule"))


def job_links(p, msg) -> list[dict]:
    """The link records of the jobs a delivered email names, in the order it names them."""
    html = msg.get_body(("html",)).get_content()
    codes = re.findall(r'href="[^"]+/c/([0-9A-Za-z]+)"', html)
    records = [orjson.loads(p.redis.get(f"ls:link:{c}")) for c in dict.fromkeys(codes)]
    return [r for r in records if r["slot"] == "job"]


def test_a_welcome_then_one_alert_of_distinct_new_jobs_then_no_empty_alert(iso):
    uid = uuid.uuid4().hex[:8]
    addr = f"carlos.{uid}@example.com"
    lid = submit(iso, "jobsnearby", {"email": addr, "first_name": "Carlos", "partner": "indeed-xml",
                                     "list": "daily-jobs", "location": {"zip": "10001", "country": "US"},
                                     "interests": {"keywords": ["nurse"], "categories": ["nursing"]}})
    # the welcome says welcome, the list joined and when it sends; it calls nothing new
    [welcome] = wait_for(lambda: mails_to(addr), 60, what="the welcome")
    text = welcome.get_body(("plain",)).get_content()
    assert welcome["Subject"] == "Welcome to Jobs Nearby, Carlos! You joined Daily job alerts"
    assert "You joined Daily job alerts" in text and "every day at 9:00 am" in text
    assert "new jobs today" not in text.lower() and "(new)" not in text

    due = due_of(iso, "jobsnearby", lid, "daily-jobs")
    iso.plan(due)
    sid = send_id("jobsnearby", lid, "daily-jobs", local_date(due, "America/New_York"))
    [alert] = wait_for(lambda: [m for m in mails_to(addr) if m["X-Leadstream-Send"] == sid], 60,
                       what="the daily alert")
    assert alert["Subject"] != welcome["Subject"]
    m = re.fullmatch(r"Carlos, (\d+) new jobs?", alert["Subject"])
    assert m, alert["Subject"]
    jobs = {k.decode(): job_from_dict(orjson.loads(v)) for k, v in iso.redis.hgetall("ls:jobs:jobsnearby").items()}
    links = job_links(iso, alert)
    shown = [jobs[r["job_key"]] for r in links]
    assert len(shown) == int(m.group(1)) >= 1  # every job in it is new, and counted
    prints = [fingerprint(j) for j in shown]
    assert len(set(prints)) == len(prints), [(j.title, j.company, j.city) for j in shown]  # no job twice
    # the feeds do list some jobs twice (same title, employer and city, other links): none of them here
    all_prints = [fingerprint(j) for j in jobs.values()]
    assert len(set(all_prints)) < len(all_prints), "the feeds have no duplicate: the check proved nothing"
    for j in shown:  # the better-paying posting of each job went
        twins = [o for o in jobs.values() if fingerprint(o) == fingerprint(j)]
        assert j.cpc_cents == max(o.cpc_cents for o in twins)
    preheader_titles = [j.title for j in shown[:3]]
    html = alert.get_body(("html",)).get_content()
    assert "best match first" in html and "freshest first" not in html
    assert all(html.count(t) >= 1 for t in preheader_titles)

    # the next morning nothing was posted since this alert: no alert, a skip with its reason
    iso.plan(due + DAY_MS)
    next_sid = send_id("jobsnearby", lid, "daily-jobs", local_date(due + DAY_MS, "America/New_York"))
    skipped = wait_for(lambda: [e for e in send_events(iso, [next_sid]) if e[0] == "send.skipped"], 60,
                       what="the next day's alert skipped")
    assert skipped[0][2] == "no_new_jobs"
    assert not [e for e in send_events(iso, [next_sid]) if e[0] == "send.dispatched"]
    assert not [msg for msg in mails_to(addr) if msg["X-Leadstream-Send"] == next_sid]


def test_a_lead_nothing_matches_gets_a_welcome_and_no_empty_alert(iso):
    uid = uuid.uuid4().hex[:8]
    addr = f"astro.{uid}@example.com"
    lid = submit(iso, "jobsnearby", {"email": addr, "partner": "indeed-xml", "list": "daily-jobs",
                                     "location": {"zip": "10001", "country": "US"},
                                     "interests": {"keywords": ["astronaut"]}})
    [welcome] = wait_for(lambda: mails_to(addr), 60, what="the welcome")
    assert welcome["Subject"].startswith("Welcome to Jobs Nearby")
    assert "current opening" not in welcome.get_body(("plain",)).get_content()  # none to show, none invented
    due = due_of(iso, "jobsnearby", lid, "daily-jobs")
    iso.plan(due)
    sid = send_id("jobsnearby", lid, "daily-jobs", local_date(due, "America/New_York"))
    skipped = wait_for(lambda: [e for e in send_events(iso, [sid]) if e[0] == "send.skipped"], 60,
                       what="the empty alert skipped")
    assert skipped[0][2] == "no_matching_jobs"
    time.sleep(2)
    assert len(mails_to(addr)) == 1  # the welcome only: no "0 new jobs", no "No new matches today"
