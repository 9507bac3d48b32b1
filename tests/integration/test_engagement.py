"""Engagement end to end on a private platform: a welcome email delivered to a real SMTP
server, opened in headless Chromium (Debian's package), its pixel loaded and a job link
clicked through the tracking front; the engagement agent decides, ClickHouse counts people
and machines apart; unsubscribe by RFC 8058 one-click; a front without Kafka spools its hits
and a later front sends them."""
from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import time

import httpx
import orjson
import pytest

from domain.links import signed_code
from projections.clickhouse import connect
from stack.isolated import IsolatedPlatform
from streams.settings import get_settings
from tests.integration.conftest import wait_for
from tests.integration.test_sending import submit

S = get_settings()
AGENTS = ("intake", "planner", "jobs", "sender_priority", "retry", "analytics", "engagement", "hygiene")
SCANNER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 BingPreview/1.0b"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MAIL: dict = {}


@pytest.fixture(scope="module")
def iso(tmp_path_factory):
    from stack.standins import smtp_sink
    folder = tmp_path_factory.mktemp("mail")
    smtp_port, _, stop_smtp = smtp_sink.start(port=0, folder=folder)
    MAIL["dir"] = folder
    env = {"LEADSTREAM_SMTP_PORT": str(smtp_port), "LEADSTREAM_MAIL_DIR": str(folder)}
    with IsolatedPlatform(redis_db=8, agents=AGENTS, env=env, fronts=("tracking",)) as p:
        p.poll_feeds()
        wait_for(lambda: p.redis.hlen("ls:jobs:jobsnearby") >= 6000, 60, what="the feeds' jobs in Redis")
        yield p
    stop_smtp()


def delivered_to(address: str, timeout: float = 60) -> email.message.EmailMessage:
    """The email the SMTP server stored for this address."""
    def find():
        for path in MAIL["dir"].glob("*.eml"):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if msg["To"] and address in msg["To"]:
                return msg
        return None
    return wait_for(find, timeout, what=f"an email to {address}")


def ch_rows(p: IsolatedPlatform, send_id: str) -> list[tuple]:
    db = p.settings.clickhouse_database
    return connect(S.clickhouse_host, S.clickhouse_port).execute(
        f"SELECT event_type, slot, actor, is_bot, reason, cpc_cents FROM {db}.engagement FINAL "
        f"WHERE send_id = %(s)s ORDER BY event_type, slot, is_bot", {"s": send_id})


def welcome_for(p, address: str) -> tuple[email.message.EmailMessage, str, str, str]:
    """Submit a nurse in New York; her welcome email, its HTML, its send id and her lead id."""
    [lid] = submit(p, "jobsnearby", [{"email": address, "first_name": "Ana", "partner": "indeed-xml",
                                      "list": "daily-jobs", "location": {"zip": "10001", "country": "US"},
                                      "interests": {"keywords": ["nurse"], "categories": ["nursing"]}}])
    msg = delivered_to(address)
    html = msg.get_body(("html",)).get_content()
    send_id = p.redis.lrange(f"ls:hist:jobsnearby:{lid}", 0, 0)
    assert send_id, "the welcome is in the lead's history"
    return msg, html, orjson.loads(send_id[0])["send_id"], lid


@pytest.fixture
def job_board(tmp_path):
    """The job board's site (https://jobs.example.com) on loopback, with a throwaway certificate:
    the browser is told to resolve the name here, so the redirect lands on a real page."""
    import http.server
    import ssl
    import threading

    from channels.webhooks_in.ses import generate_signing_cert
    key_pem, cert_pem = generate_signing_cert("jobs.example.com")
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "cert.pem").write_bytes(cert_pem)

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body><h1>Registered Nurse</h1></body></html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_person_in_chromium_opens_and_clicks_and_counts_as_human(iso, tmp_path, job_board):
    from playwright.sync_api import sync_playwright
    msg, html, send_id, _ = welcome_for(iso, f"ana-{os.getpid()}@example.com")
    jobs = [u for u in re.findall(rf'href="({re.escape(iso.tracking_url)}/c/[0-9A-Za-z]+)"', html)
            if _record(iso, u)["slot"] == "job"]
    assert jobs, "the email has tracked job links"
    page_file = tmp_path / "mail.html"
    page_file.write_text(html)
    time.sleep(2.2)  # a person reads before clicking (the tenant's min_click_delay_s is 2)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", f"--host-resolver-rules=MAP jobs.example.com:443 127.0.0.1:{job_board}",
            "--ignore-certificate-errors"])
        # headless Chromium says "HeadlessChrome" (a crawler, rightly); a person's Chromium does not
        page = browser.new_page(user_agent=browser.new_page().evaluate("navigator.userAgent").replace("HeadlessChrome", "Chrome"))
        pixels = []
        page.on("response", lambda r: pixels.append(r) if "/o/" in r.url else None)
        page.goto(page_file.as_uri())
        page.wait_for_load_state("networkidle")
        assert pixels and all(r.status == 200 and r.headers["content-type"] == "image/gif" for r in pixels)
        first_job = page.locator(f'a[href="{jobs[0]}"]').first
        with page.expect_navigation():
            first_job.click()
        landed = page.url
        browser.close()
    assert landed == _record(iso, jobs[0])["destination_url"]
    rows = wait_for(lambda: (r := ch_rows(iso, send_id)) and {x[0] for x in r} >= {"engagement.opened", "engagement.clicked"} and r,
                    60, what="the open and the click in ClickHouse")
    clicks = [r for r in rows if r[0] == "engagement.clicked"]
    opens = [r for r in rows if r[0] == "engagement.opened"]
    assert [(c[2], c[3], c[4]) for c in clicks] == [("human", 0, "")]
    assert {(o[2], o[3]) for o in opens} == {("human", 0)} and {o[1] for o in opens} <= {"pixel_top", "pixel_bottom"}
    assert clicks[0][5] > 0, "the click carries the job's CPC"
    state = iso.redis.hgetall(f"ls:eng:jobsnearby:{_lead_of(iso, send_id)}")
    assert int(state[b"human_clicks"]) == 1 and int(state[b"human_opens"]) >= 1 and b"last_human_click_ms" in state
    assert int(state[b"score"]) == 3 + int(state[b"human_opens"])


def _record(p, url: str) -> dict:
    """The link record behind a tracked URL."""
    return orjson.loads(p.redis.get(f"ls:link:{url.rsplit('/', 1)[1]}"))


def _lead_of(p, send_id: str) -> str:
    for key in p.redis.scan_iter("ls:link:*"):
        rec = orjson.loads(p.redis.get(key))
        if rec["send_id"] == send_id:
            return rec["lead_id"]
    raise AssertionError(f"no link of {send_id}")


def test_the_same_hits_from_a_link_scanner_count_as_machine_and_tampered_codes_are_404(iso):
    msg, html, send_id, _ = welcome_for(iso, f"scanned-{os.getpid()}@example.com")
    urls = re.findall(rf'(?:href|src)="({re.escape(iso.tracking_url)}/[co]/[0-9A-Za-z]+)"', html)
    time.sleep(2.2)
    with httpx.Client(headers={"user-agent": SCANNER_UA}) as c:
        for url in urls:  # a scanner fetches every URL of the message, the honeypot included
            assert c.get(url).status_code in (200, 302)
        code = urls[0].rsplit("/", 1)[1]
        for bad in (code[:-1] + ("x" if code[-1] != "x" else "y"), code + "0", "0", signed_code(10**12, b"other key")):
            r = c.get(f"{iso.tracking_url}/c/{bad}")
            assert r.status_code == 404 and "location" not in r.headers
    rows = wait_for(lambda: (r := ch_rows(iso, send_id)) and len(r) >= len(urls) and r, 60,
                    what="the scanner's hits in ClickHouse")
    assert rows and all(r[3] == 1 for r in rows), rows
    assert {r[4] for r in rows} <= {"security_scanner:microsoft", "honeypot", "after_honeypot", "burst"}


def test_one_click_unsubscribe_unsubscribes_the_lead(iso):
    msg, html, send_id, lid = welcome_for(iso, f"leaving-{os.getpid()}@example.com")
    target = re.search(r"<(http[^>]+/u/[0-9A-Za-z]+)>", msg["List-Unsubscribe"]).group(1)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page = httpx.get(target)
    assert page.status_code == 200 and "<form method=\"post\"" in page.text
    r = httpx.post(target, content=b"List-Unsubscribe=One-Click",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "unsubscribed" in r.text
    wait_for(lambda: (st := iso.redis.get(f"ls:lead:jobsnearby:{lid}")) and orjson.loads(st)["status"] == "unsubscribed",
             60, what="the lead unsubscribed")


def test_a_front_without_kafka_still_redirects_and_spools_then_a_later_front_sends_them(iso):
    msg, html, send_id, _ = welcome_for(iso, f"spooled-{os.getpid()}@example.com")
    jobs = [u.rsplit("/", 1)[1] for u in re.findall(rf'href="({re.escape(iso.tracking_url)}/c/[0-9A-Za-z]+)"', html)
            if _record(iso, u)["slot"] == "job"]
    iso.stop_front("tracking")
    spool = iso.tmp / "spool" / "tracking"
    iso.start_front("tracking", env={"LEADSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1"})  # nothing listens there
    time.sleep(2.2)
    ua = {"user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"}
    for code in jobs[:2]:  # answered without Kafka (a front waiting on it would time out: 15 s)
        r = httpx.get(f"{iso.tracking_url}/c/{code}", headers=ua, timeout=5)
        assert r.status_code == 302
    wait_for(lambda: sum(1 for f in spool.glob("*.jsonl") for _ in open(f)) >= 2, 40, what="the hits in the spool")
    iso.stop_front("tracking")
    iso.start_front("tracking")  # Kafka reachable again: the spool is sent
    wait_for(lambda: not any(f.stat().st_size for f in spool.glob("*.jsonl")), 40, what="the spool sent")
    rows = wait_for(lambda: (r := ch_rows(iso, send_id)) and len([x for x in r if x[0] == "engagement.clicked"]) >= 2 and r,
                    60, what="the spooled clicks in ClickHouse")
    assert len([x for x in rows if x[0] == "engagement.clicked"]) >= 2


def test_revenue_by_source_equals_the_cpcs_people_clicked(iso):
    from datetime import date, timedelta

    from projections.revenue import revenue
    msg, html, send_id, _ = welcome_for(iso, f"earner-{os.getpid()}@example.com")
    jobs = [u for u in re.findall(rf'href="({re.escape(iso.tracking_url)}/c/[0-9A-Za-z]+)"', html)
            if _record(iso, u)["slot"] == "job"][:3]
    assert len(jobs) >= 2
    person = {"user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"}
    time.sleep(2.2)
    for url in jobs:  # a person reads each job before opening the next
        assert httpx.get(url, headers=person).status_code == 302
        time.sleep(1.3)
    expected: dict[str, int] = {}
    for url in jobs:
        rec = _record(iso, url)
        source = rec["job_key"].split(":")[1]
        expected[source] = expected.get(source, 0) + int(rec["cpc_cents"])
    db = iso.settings.clickhouse_database
    client = connect(S.clickhouse_host, S.clickhouse_port)
    wait_for(lambda: len([r for r in ch_rows(iso, send_id) if r[0] == "engagement.clicked"]) >= len(jobs), 60,
             what="the clicks in ClickHouse")
    today = date.today()
    rows = revenue(client, db, "jobsnearby", ["job_source"], today - timedelta(days=1), today + timedelta(days=1))
    got = {r["job_source"]: r["revenue_cents"] for r in rows}
    # other tests' clicks on this platform are scanners' (machines, not billed) or the Chromium person's one click
    chromium = {r[0]: r[1] for r in client.execute(
        f"SELECT job_source, sum(cpc_cents) FROM {db}.engagement FINAL WHERE event_type = 'engagement.clicked' "
        f"AND is_bot = 0 AND send_id != %(s)s AND slot != 'honeypot' GROUP BY job_source", {"s": send_id})}
    for source, cents in expected.items():
        assert got[source] == cents + chromium.get(source, 0), (source, got, expected, chromium)
