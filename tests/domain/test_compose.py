import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from markupsafe import escape

from domain.compose import (OPT_OUT_LINE, ComplianceError, EmailContext, ListFacts, Recipient, SmsContext,
                            TenantBrand, compose_email, compose_sms, email_codes_needed, list_title,
                            schedule_phrase, sms_codes_needed)
from domain.creatives import Creative, pick_creative
from domain.jobs import Job
from domain.links import code_number, signed_code

KEY = b"compose-test-key"


def codes(start: int, n: int) -> list[str]:
    return [signed_code(i, KEY) for i in range(start, start + n)]
from domain.sms_text import segments
from projections.templates import TemplateStore

BASE = "https://t.jobsnearby.example"
NOW = 1_760_000_000_000
DAY = 86_400_000
TRACKED = re.compile(r"^https://t\.jobsnearby\.example/([coup])/([0-9A-Za-z]+)$")
URL = re.compile(r"https?://[^\s\"'<>]+")
DEMO = Path(__file__).resolve().parents[2] / "tenants" / "demo.yaml"

BRAND = TenantBrand(id="jobsnearby", name="Jobs Nearby",
                    postal_address="100 Congress Ave, Suite 2 & 3, Austin, TX 78701", from_name="Jobs Nearby", from_address="alerts@jobsnearby.example",
                    unsubscribe_mailto="unsubscribe@jobsnearby.example")
LEAD = Recipient(lead_id="01J9LEADX", address="zebulon.quirk@example.com", first_name="Zebulon", city="Austin")
CREATIVES = (
    Creative(id="cert", headline="Forklift licence in a day", url="https://ads.example/cert?src=ls", cta="Book",
             weight=3, cpc_cents=25),
    Creative(id="boots", headline="Safety boots 20% off", url="https://ads.example/boots", weight=1),
    Creative(id="paused", headline="Paused", url="https://ads.example/paused", weight=0),
)


def job(i: int, title: str, **over) -> Job:
    base = dict(tenant="jobsnearby", job_id=f"R{i}", source="indeed-xml", title=title, company=f"Acme {i}",
                url=f"https://jobs.example/apply/{i}?utm_source=ls&ref=R{i}", city="Austin", state="TX",
                posted_at_ms=NOW - i * DAY, cpc_cents=30 + i)
    return Job(**(base | over))


JOBS = (job(1, "Forklift Driver"), job(2, "Picker <script>alert(1)</script>"), job(3, "Night Loader & Packer"))


@pytest.fixture(scope="module")
def store() -> TemplateStore:
    return TemplateStore()


def email_ctx(store, **over) -> EmailContext:
    base = dict(tenant=BRAND, lead=LEAD, list="daily-jobs", send_id="send-2025-10-09-0001",
                template=store.email("jobsnearby", "daily-jobs"), jobs=JOBS, codes=codes(5000, 10),
                tracking_base_url=BASE, now_ms=NOW, creatives=CREATIVES, campaign="daily-2025-10-09",
                new_job_keys=frozenset(j.key for j in over.get("jobs", JOBS)))  # a daily alert: its jobs are new
    return EmailContext(**(base | over))


def sms_ctx(store, **over) -> SmsContext:
    base = dict(tenant=BRAND, lead=replace(LEAD, address="+15125550100"), list="sms-alerts", send_id="sms-1",
                template=store.sms("jobsnearby", "sms-alerts"), jobs=JOBS, codes=[signed_code(777_000, KEY)],
                tracking_base_url=BASE, now_ms=NOW, campaign="sms-2025-10-09",
                new_job_keys=frozenset(j.key for j in over.get("jobs", JOBS)))
    return SmsContext(**(base | over))


@pytest.fixture(scope="module")
def mail(store):
    return compose_email(email_ctx(store))


def html_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', html)


def positions(text: str, needles) -> list[int]:
    return [text.index(n) for n in needles]


def test_jobs_appear_in_rank_order_in_both_parts(mail):
    titles_html = ["Forklift Driver", "Picker &lt;script&gt;", "Night Loader &amp; Packer"]
    titles_text = ["Forklift Driver", "Picker <script>", "Night Loader & Packer"]
    assert positions(mail.html, titles_html) == sorted(positions(mail.html, titles_html))
    assert positions(mail.text, titles_text) == sorted(positions(mail.text, titles_text))


def test_every_html_link_is_tracked_with_a_given_code(mail):
    given = set(codes(5000, 10))
    urls = html_urls(mail.html)
    assert len(urls) >= 7
    for url in urls:
        m = TRACKED.match(url)
        assert m, f"untracked URL in HTML: {url}"
        assert m.group(2) in given
    for url in URL.findall(mail.text):
        assert TRACKED.match(url), f"untracked URL in text: {url}"


def test_link_records_map_codes_to_their_own_destinations(mail):
    by_code = {r.code: r for r in mail.links}
    assert len(by_code) == len(mail.links) == 9  # 3 jobs + creative + 2 pixels + unsubscribe + preferences + honeypot
    jobs = [r for r in mail.links if r.slot == "job"]
    assert [(r.destination_url, r.position, r.job_key, r.cpc_cents) for r in jobs] == \
        [(j.url, i, j.key, j.cpc_cents) for i, j in enumerate(JOBS, 1)]
    for r, j in zip(jobs, JOBS):  # each job's tracked link is the one around its own title
        assert re.search(f'<a href="{BASE}/c/{r.code}"[^>]*>{re.escape(str(escape(j.title)))}</a>', mail.html)
        assert f"{j.title} - {j.company}, Austin, TX\n   {BASE}/c/{r.code}" in mail.text
    for url in html_urls(mail.html):
        kind, code = TRACKED.match(url).groups()
        assert by_code[code].kind == {"c": "click", "o": "open", "u": "unsubscribe", "p": "preferences"}[kind]
    assert {r.send_id for r in mail.links} == {"send-2025-10-09-0001"}
    assert {r.lead_id for r in mail.links} == {LEAD.lead_id}
    assert {r.template for r in mail.links} == {mail.template_version}
    assert all(r.destination_url == "" for r in mail.links if r.kind != "click" or r.slot == "honeypot")


def test_a_hidden_honeypot_link_right_after_body(mail):
    trap = [r for r in mail.links if r.slot == "honeypot"]
    assert len(trap) == 1 and trap[0].kind == "click"
    body = re.search(r"<body[^>]*>", mail.html).end()
    tag = re.match(r'<a href="([^"]+)" style="display:none!important;mso-hide:all" aria-hidden="true" '
                   r'tabindex="-1"></a>', mail.html[body:])
    assert tag and tag.group(1) == f"{BASE}/c/{trap[0].code}"
    assert f"/c/{trap[0].code}" not in mail.text  # nowhere a person could see it


def test_codes_are_signed_and_a_changed_character_is_refused(mail):
    for r in mail.links:
        assert code_number(r.code, [KEY]) is not None
        flipped = r.code[:-1] + ("A" if r.code[-1] != "A" else "B")
        assert code_number(flipped, [KEY]) is None
        assert code_number(r.code, [b"another key"]) is None


def test_two_open_pixels_at_top_and_bottom(mail):
    pixels = {r.slot: r for r in mail.links if r.kind == "open"}
    assert set(pixels) == {"pixel_top", "pixel_bottom"}
    top = mail.html.index(f'src="{BASE}/o/{pixels["pixel_top"].code}"')
    bottom = mail.html.index(f'src="{BASE}/o/{pixels["pixel_bottom"].code}"')
    first_job = mail.html.index(f'href="{BASE}/c/{mail.links[1].code}"')
    assert top < first_job < mail.html.index("100 Congress Ave") < bottom


def test_no_personal_data_in_any_url(mail):
    urls = html_urls(mail.html) + URL.findall(mail.text) + re.findall(r"<([^>]+)>", mail.headers["List-Unsubscribe"])
    for url in urls:
        for secret in (LEAD.address, "zebulon", "Zebulon", "quirk", LEAD.lead_id, "%40", "@example.com"):
            assert secret not in url, f"{secret} leaked into {url}"


def test_list_unsubscribe_headers_follow_rfc_8058(mail):
    unsub = next(r for r in mail.links if r.kind == "unsubscribe")
    assert mail.headers["List-Unsubscribe"] == \
        f"<{BASE}/u/{unsub.code}>, <mailto:unsubscribe@jobsnearby.example?subject=unsubscribe>"
    assert re.fullmatch(r"<https://[^<>\s,]+>, <mailto:[^<>\s,@]+@[^<>\s,?]+\?subject=unsubscribe>",
                        mail.headers["List-Unsubscribe"])
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.headers["X-Leadstream-Send"] == "send-2025-10-09-0001"
    assert f'href="{BASE}/u/{unsub.code}"' in mail.html and f"{BASE}/u/{unsub.code}" in mail.text


def test_address_goes_only_in_the_to_header(mail):
    assert mail.headers["To"] == "Zebulon <zebulon.quirk@example.com>"
    assert LEAD.address not in mail.html and LEAD.address not in mail.text
    assert mail.headers["From"] == "Jobs Nearby <alerts@jobsnearby.example>"
    assert mail.headers["Message-ID"] == "<send-2025-10-09-0001@jobsnearby.example>"


def test_footer_has_the_physical_address(mail):
    assert "100 Congress Ave, Suite 2 &amp; 3, Austin, TX 78701" in mail.html
    assert "100 Congress Ave, Suite 2 & 3, Austin, TX 78701" in mail.text
    assert mail.text.index("100 Congress Ave") > mail.text.index("Night Loader")


def test_creative_is_the_deterministic_weighted_pick(store, mail):
    assert mail.creative == pick_creative(CREATIVES, "send-2025-10-09-0001")
    record = next(r for r in mail.links if r.slot == "creative")
    assert (record.destination_url, record.creative, record.cpc_cents) == \
        (mail.creative.url, mail.creative.id, mail.creative.cpc_cents)
    assert f'href="{BASE}/c/{record.code}"' in mail.html
    assert compose_email(email_ctx(store)) == mail  # a re-send composes the very same message


def test_creative_rotation_follows_weights():
    picks = [pick_creative(CREATIVES, f"send-{i}").id for i in range(4000)]
    assert "paused" not in picks
    assert 0.70 < picks.count("cert") / len(picks) < 0.80  # weight 3 of 4
    assert pick_creative(tuple(reversed(CREATIVES)), "send-7") == pick_creative(CREATIVES, "send-7")


def test_html_is_compiled_responsive_mjml(mail):
    assert mail.html.lower().startswith("<!doctype html>") and "<html" in mail.html
    assert "@media only screen and (max-width:479px)" in mail.html or "@media only screen" in mail.html
    assert "mj-column-per-100" in mail.html and mail.html.rstrip().endswith("</html>")
    assert "<mj-" not in mail.html and "{{" not in mail.html and "{%" not in mail.html
    assert "fonts.googleapis" not in mail.html  # opening the email calls no third party


def test_autoescaping_in_html_but_not_in_text(mail):
    assert "<script>" not in mail.html
    assert "Picker &lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "Picker <script>alert(1)</script>" in mail.text  # text/plain: nothing to escape


def test_merge_tags_and_subject(mail, store):
    assert mail.subject == "Zebulon, 3 new jobs near Austin"
    assert "Hi Zebulon," in mail.html and "Hi Zebulon," in mail.text
    anonymous = compose_email(email_ctx(store, lead=Recipient(lead_id="L2", address="x@example.com")))
    assert "Hi there," in anonymous.html and "Hi there," in anonymous.text
    assert anonymous.subject == "3 new jobs near Austin" or anonymous.subject == "3 new jobs"


def test_header_injection_is_flattened(store):
    sneaky = Recipient(lead_id="L3", address="x@example.com", first_name="Eve\r\nBcc: all@example.com", city="Austin")
    m = compose_email(email_ctx(store, lead=sneaky))
    assert "\n" not in m.subject and "\r" not in m.subject
    assert all("\n" not in v and "\r" not in v for v in m.headers.values())


def test_without_creatives_the_block_is_left_out(store):
    m = compose_email(email_ctx(store, creatives=(), codes=codes(100, email_codes_needed(3, False))))
    assert m.creative is None and "Sponsored" not in m.html and "Sponsored" not in m.text
    assert [r.slot for r in m.links] == ["pixel_top", "job", "job", "job", "pixel_bottom", "unsubscribe",
                                          "preferences", "honeypot"]


def test_too_few_codes_is_refused(store):
    with pytest.raises(ValueError, match="9 link codes needed, 6 given"):
        compose_email(email_ctx(store, codes=codes(0, 6)))


class NoFooterTemplate:
    version = "bad"

    def render_subject(self, data):
        return "hi"

    def render_html(self, data):
        return "".join(f'<a href="{j["link"]}">{j["title"]}</a>' for j in data["jobs"])

    def render_text(self, data):
        return "jobs"


def test_template_without_unsubscribe_or_address_cannot_send(store):
    with pytest.raises(ComplianceError, match="unsubscribe link in HTML.*postal address in text"):
        compose_email(email_ctx(store, template=NoFooterTemplate()))


class NoPreferenceLinkTemplate(NoFooterTemplate):
    """Unsubscribe and address in both parts, but no "manage this alert" link."""

    def render_html(self, data):
        return f'<a href="{data["unsubscribe_url"]}">Unsubscribe</a> {escape(data["tenant"]["postal_address"])}'

    def render_text(self, data):
        return f'Unsubscribe: {data["unsubscribe_url"]}\n{data["tenant"]["postal_address"]}'


def test_template_without_the_preference_link_cannot_send(store):
    with pytest.raises(ComplianceError, match="lacks: preference link in HTML, preference link in text$"):
        compose_email(email_ctx(store, template=NoPreferenceLinkTemplate()))


def test_every_email_links_its_preference_page_in_both_parts(mail):
    [pref] = [r for r in mail.links if r.kind == "preferences"]
    url = f"{BASE}/p/{pref.code}"
    assert pref.slot == "preferences" and pref.destination_url == "" and pref.list == "daily-jobs"
    assert re.search(f'<a href="{re.escape(url)}"[^>]*>Manage this alert</a>', mail.html)
    assert f"Manage this alert (how often, pause, leave): {url}" in mail.text
    assert LEAD.lead_id not in url and "zebulon" not in url.lower()  # no personal data in the URL
    assert code_number(pref.code, [KEY]) is not None  # a signed code like every other link


def demo_lists():
    book = yaml.safe_load(DEMO.read_text())
    return [(t, name, cfg["channel"]) for t, tenant in book["tenants"].items() for name, cfg in tenant["lists"].items()]


@pytest.mark.parametrize("tenant,list_name,channel", demo_lists())
def test_every_demo_list_composes(store, tenant, list_name, channel):
    brand = replace(BRAND, id=tenant)
    if channel == "email":
        m = compose_email(email_ctx(store, tenant=brand, list=list_name, template=store.email(tenant, list_name)))
        assert all(TRACKED.match(u) for u in html_urls(m.html)) and m.subject
    else:
        s = compose_sms(sms_ctx(store, tenant=brand, list=list_name, template=store.sms(tenant, list_name)))
        assert s.segments == 1 and OPT_OUT_LINE in s.body and ".." not in s.body.replace("...", "")


# --- SMS ---

def test_sms_fits_one_segment_by_default_with_short_link_and_opt_out(store):
    s = compose_sms(sms_ctx(store))
    link = f"{BASE}/c/{signed_code(777_000, KEY)}"
    assert s.segments == 1 and segments(s.body)[0] == s.segments
    assert link in s.body and s.body.rstrip().endswith(OPT_OUT_LINE)
    assert s.encoding == "GSM-7" and s.to == "+15125550100"
    assert [(r.code, r.destination_url, r.position) for r in s.links] == [(signed_code(777_000, KEY), JOBS[0].url, 1)]
    assert "Forklift Driver" in s.body and "zebulon" not in link.lower()


def test_sms_drops_jobs_then_words_to_fit(store):
    long = tuple(job(i, " ".join(["Senior Warehouse Operations Supervisor, overnight inbound receiving"] * 3))
                 for i in range(1, 4))
    s = compose_sms(sms_ctx(store, jobs=long, max_segments=2))
    assert s.segments <= 2 and f"{BASE}/c/" in s.body and OPT_OUT_LINE in s.body
    assert "..." in s.body and "Acme 2" not in s.body
    one = compose_sms(sms_ctx(store, jobs=long, max_segments=1))
    assert one.segments == 1 and f"{BASE}/c/" in one.body and OPT_OUT_LINE in one.body


def test_sms_normalises_typography_to_stay_gsm(store):
    s = compose_sms(sms_ctx(store, jobs=(job(1, "Driver \u2013 \u201cNight\u201d shift\u2026"),)))
    assert s.encoding == "GSM-7" and 'Driver - "Night" shift...' in s.body


def test_sms_goes_ucs2_only_when_content_forces_it(store):
    jobs = (job(1, "\u4ed3\u5e93\u64cd\u4f5c\u5458 Warehouse operator"),) + JOBS[1:]
    s = compose_sms(sms_ctx(store, jobs=jobs, max_segments=2))  # a list that allows two segments
    assert s.encoding == "UCS-2" and s.segments <= 2 and OPT_OUT_LINE in s.body
    # one segment holds only 70 UCS-2 characters: the title goes, the message stays GSM-7 in one
    one = compose_sms(sms_ctx(store, jobs=jobs))
    assert one.segments == 1 and one.encoding == "GSM-7" and f"{BASE}/c/" in one.body and OPT_OUT_LINE in one.body


def test_sms_tenant_setting_limits_segments(store):
    s = compose_sms(sms_ctx(store, tenant=replace(BRAND, sms_max_segments=1)))
    assert s.segments == 1 and OPT_OUT_LINE in s.body


def test_sms_refuses_when_link_and_opt_out_cannot_fit(store):
    with pytest.raises(ValueError, match="exceed 1 segments"):
        compose_sms(sms_ctx(store, tracking_base_url="https://t.example/" + "x" * 200, max_segments=1))


# --- what is new, the welcome, and SMS that fit one segment ---

def test_only_jobs_first_seen_since_the_previous_alert_are_called_new(store):
    m = compose_email(email_ctx(store, new_job_keys=frozenset({JOBS[1].key})))
    assert m.subject == "Zebulon, 1 new job near Austin"
    assert m.html.count("<strong>new</strong>") == 1 and m.text.count("(new)") == 1
    assert m.text.index("(new)") > m.text.index("Picker")  # the mark sits on that job's line
    assert "best match first" in m.html and "freshest first" not in m.html
    none_new = compose_email(email_ctx(store, new_job_keys=frozenset()))
    assert "new" not in none_new.subject.lower() and "new" not in none_new.text.split("--")[0].lower()


def welcome_ctx(store, tenant="jobsnearby", **over) -> EmailContext:
    facts = ListFacts(list_title("daily-jobs", "Daily job alerts"), schedule_phrase("09:00", "daily"))
    base = dict(template=store.email(tenant, "welcome"), jobs=JOBS[:2], new_job_keys=frozenset(),
                list_facts=facts, codes=codes(9000, 10))
    return email_ctx(store, **(base | over))


def test_a_welcome_says_welcome_what_was_joined_and_when_not_new_jobs_today(store):
    daily = compose_email(email_ctx(store))
    welcome = compose_email(welcome_ctx(store))
    assert welcome.subject == "Welcome to Jobs Nearby, Zebulon! You joined Daily job alerts" != daily.subject
    for part in (welcome.html, welcome.text):
        assert "You joined" in part and "Daily job alerts" in part and "every day at 9:00 am" in part
        assert "new job" in part and "current opening" in part  # it promises new jobs, shows current ones
        assert "new match" not in part and "new today" not in part and "(new)" not in part
    assert "<strong>new</strong>" not in welcome.html and "Forklift Driver" in welcome.html
    bare = compose_email(welcome_ctx(store, jobs=(), creatives=()))
    assert "current opening" not in bare.text and "You joined" in bare.text


def test_welcome_templates_are_per_tenant_with_a_default(store):
    assert "default/welcome.mjml" in store.email("jobsnearby", "welcome").files
    assert "hireflow/welcome.mjml" in store.email("hireflow", "welcome").files
    assert "default/welcome.txt.j2" in store.email("hireflow", "welcome").files
    assert "shiftly/welcome.sms.j2" in store.sms("shiftly", "welcome").files
    assert "default/welcome.sms.j2" in store.sms("jobsnearby", "welcome").files


def test_a_welcome_sms_needs_no_job_and_fits_one_segment(store):
    facts = ListFacts("Job alerts by text", schedule_phrase("10:00", "weekdays"), "sms")
    for tenant in ("jobsnearby", "shiftly"):
        bare = compose_sms(sms_ctx(store, template=store.sms(tenant, "welcome"), jobs=(), codes=[],
                                   new_job_keys=frozenset(), list_facts=facts))
        assert bare.segments == 1 and bare.links == () and OPT_OUT_LINE in bare.body
        assert "every weekday at 10:00 am" in bare.body and "/c/" not in bare.body
        one = compose_sms(sms_ctx(store, template=store.sms(tenant, "welcome"), jobs=JOBS[:1],
                                  new_job_keys=frozenset(), list_facts=facts))
        assert one.segments == 1 and f"{BASE}/c/" in one.body and "new job" not in one.body.split(":", 1)[1][:5]
    assert sms_codes_needed(0) == 0 and sms_codes_needed(3) == 1


def test_schedule_phrases_and_list_titles():
    assert schedule_phrase("09:00", "daily") == "every day at 9:00 am"
    assert schedule_phrase("13:30", "weekdays") == "every weekday at 1:30 pm"
    assert schedule_phrase("00:05", "weekly") == "once a week at 12:05 am"
    assert schedule_phrase("07:30", "mon,thu") == "every Monday and Thursday at 7:30 am"
    assert schedule_phrase("12:00", "weekly:fri") == "every Friday at 12:00 pm"
    assert list_title("daily-jobs") == "Daily jobs" and list_title("x", "  Night   shifts ") == "Night shifts"


def realistic_sms_jobs(rng, n: int) -> tuple:
    """n jobs with the titles, employers and places that make SMS long or awkward."""
    titles = ["Registered Nurse - Med/Surg - Night Shift, $5,000 Sign-On Bonus", "CDL-A Regional Truck Driver",
              "Senior Warehouse Operations Supervisor, overnight inbound receiving", "Line Cook", "RN",
              "Licensed Practical Nurse (LPN) – Long-Term Care", "Forklift Operator – 2nd shift “Reach”",
              "Técnico de Mantenimiento Industrial", "Barista/Café Associate", "Delivery Driver - Weekends Only"]
    companies = ["Acme Co.", "Globex Inc.", "Initech LLC", "Umbrella Holdings, Ltd.", "Müller & Söhne GmbH",
                 "Zoë's Kitchen", "Urban Outfit Co.", "St. Mary's Hospital Inc.", "Bean There Cafe", "A.B.C. Corp."]
    cities = [("New York", "NY"), ("San José", "CA"), ("Coeur d'Alene", "ID"), ("Española", "NM"), ("Austin", "TX")]
    out = []
    for i in range(n):
        city, state = rng.choice(cities)
        out.append(job(i + 1, rng.choice(titles), company=rng.choice(companies), city=city, state=state))
    return tuple(out)


@pytest.mark.parametrize("tenant,list_name", [("jobsnearby", "sms-alerts"), ("shiftly", "shifts-sms"),
                                               ("default", "default")])
def test_sms_over_hundreds_of_realistic_jobs_fit_the_lists_segments(store, tenant, list_name):
    import random
    rng = random.Random(f"sms-{tenant}")
    names = ["Zebulon", "Zoë", "José", "Łukasz", "Anne-Marie", "", "Nguyễn", "O'Brien"]
    template = store.sms(tenant, list_name)
    for i in range(150):
        jobs = realistic_sms_jobs(rng, rng.randint(1, 5))
        lead = replace(LEAD, address="+15125550100", first_name=rng.choice(names), city=rng.choice(["Austin", ""]))
        new = frozenset(j.key for j in jobs if rng.random() < 0.7)
        for allowed in (None, 2):
            s = compose_sms(sms_ctx(store, tenant=replace(BRAND, id=tenant), lead=lead, template=template,
                                    jobs=jobs, new_job_keys=new, max_segments=allowed))
            assert s.segments == segments(s.body)[0] <= (allowed or 1), s.body
            assert ".." not in s.body.replace("...", ""), s.body
            assert "...." not in s.body and " ." not in s.body
            assert s.body.endswith(OPT_OUT_LINE) and f"{BASE}/c/{signed_code(777_000, KEY)}" in s.body, s.body
            if allowed is None:
                assert s.encoding == "GSM-7", s.body
            if new != frozenset(j.key for j in jobs):
                assert " new " not in s.body.split(":", 2)[1] and "new job" not in s.body, s.body


def test_a_company_ending_in_a_full_stop_is_not_followed_by_another(store):
    jobs = (job(1, "Cashier", company="Urban Outfit Co."),)
    s = compose_sms(sms_ctx(store, jobs=jobs))
    assert "Cashier at Urban Outfit Co. Apply:" in s.body and "Co.." not in s.body


def test_the_recommendations_block_lists_its_jobs_after_the_matches_with_tracked_links(store):
    recs = ((job(7, "Warehouse Lead"), "content"), (job(8, "Dock Supervisor"), "collaborative"))
    n = email_codes_needed(len(JOBS), True, len(recs))
    assert n == email_codes_needed(len(JOBS), True) + 2
    m = compose_email(email_ctx(store, recommended=recs, codes=codes(9000, n)))
    assert "Recommended for you" in m.html and "Recommended for you" in m.text
    at = m.html.index("Recommended for you")
    assert m.html.index("Night Loader") < at < m.html.index("Warehouse Lead") < m.html.index("Dock Supervisor")
    assert "people who clicked what you clicked" in m.html
    slots = [(r.slot, r.job_key, r.position) for r in m.links if r.slot == "recommended"]
    assert slots == [("recommended", recs[0][0].key, 1), ("recommended", recs[1][0].key, 2)]
    rec_urls = [u for u in html_urls(m.html) if any(u.endswith(r.code) for r in m.links if r.slot == "recommended")]
    assert len(rec_urls) == 2  # each recommended job links through its own tracked code
    assert "jobs.example/apply/7" not in m.html  # never the raw destination
    with pytest.raises(ValueError, match="link codes needed"):
        compose_email(email_ctx(store, recommended=recs, codes=codes(9000, n - 1)))


def test_without_recommendations_there_is_no_block(mail):
    assert "Recommended for you" not in mail.html and "Recommended for you" not in mail.text
    assert not [r for r in mail.links if r.slot == "recommended"]


def test_a_digests_items_link_through_the_tracking_front_and_never_show_their_raw_url(store):
    items = [{"title": f"Post {n}", "url": f"https://community.example/p/{n}", "group": "g1", "score": 10.0 - n}
             for n in range(1, 4)]
    extra = {"digest": {"id": "weekly", "period": "2025-W41", "count": 3, "items": items}}
    n = email_codes_needed(0, False, 0, len(items))
    m = compose_email(email_ctx(store, jobs=[], creatives=(), template=store.email("jobsnearby", "digest"),
                                codes=codes(9000, n), extra=extra, campaign="digest:weekly"))
    digest_links = [r for r in m.links if r.slot == "digest"]
    assert [(r.kind, r.destination_url, r.position) for r in digest_links] == \
        [("click", it["url"], i) for i, it in enumerate(items, start=1)]
    assert len(m.links) == n  # every code it was given, each for one link
    for part in (m.html, m.text):
        assert "community.example" not in part  # only tracked links
        for r in digest_links:
            assert r.code in part
        assert part.index("Post 1") < part.index("Post 2") < part.index("Post 3")
