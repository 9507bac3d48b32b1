"""Partner feeds: both formats parsed into Jobs, bad entries reported, bad feeds refused, diffs."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from domain.feeds import FeedError, diff_feed, keywords_of, parse_date_ms, parse_feed
from domain.jobs import Job

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


def xml_feed(*jobs: str) -> bytes:
    """An Indeed-style feed around the given <job> elements."""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<source>\n<publisher>ATS Name</publisher>\n'
            "<publisherurl>http://www.atssite.com</publisherurl>\n"
            + "\n".join(jobs) + "\n</source>\n").encode()


def xml_job(ref: str = "unique123131", title: str = "<![CDATA[Registered Nurse]]>",
            url: str = "<![CDATA[http://www.examplesite.com/viewjob.cfm?jobid=unique123131&source=Indeed]]>",
            cpc: str = "<![CDATA[1.205]]>", extra: str = "") -> str:
    """One <job>, CDATA-wrapped like real feeds; pass '' to leave an element empty."""
    return f"""<job>
  <title>{title}</title>
  <date><![CDATA[Fri, 19 Dec 2025 22:49:39 GMT]]></date>
  <referencenumber><![CDATA[{ref}]]></referencenumber>
  <url>
    {url}
  </url>
  <company><![CDATA[ABC Hospital]]></company>
  <city><![CDATA[ Phoenix ]]></city>
  <state><![CDATA[az]]></state>
  <country><![CDATA[US]]></country>
  <postalcode><![CDATA[85003-1234]]></postalcode>
  <description><![CDATA[<p>Do you have 1-3 years of experience? Apply now!</p>]]></description>
  <category><![CDATA[Nursing]]></category>
  <cpc>{cpc}</cpc>
  {extra}
</job>"""


def json_feed(*jobs: dict) -> bytes:
    """A JSON feed of the given entries."""
    return json.dumps({"jobs": list(jobs)}).encode()


def json_job(**over) -> dict:
    """One JSON entry; keyword arguments override or (with None) remove fields."""
    base = {"id": "j-1", "title": "Forklift Driver", "company": "Atlas Fulfillment",
            "city": "Los Angeles", "state": "CA", "zip": "90012", "country": "US",
            "lat": 34.06, "lon": -118.24, "description": "Night shift.", "url": "https://x.test/j-1",
            "category": "Warehouse & Logistics", "posted_at": "2025-12-30T08:00:00Z", "cpc": 0.35}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_xml_feed_with_cdata_is_parsed_and_normalised():
    parsed = parse_feed(xml_feed(xml_job()), "xml", "acme", "indeed")
    assert parsed.problems == []
    [job] = parsed.jobs
    assert job.key == "acme:indeed:unique123131"
    assert job.title == "Registered Nurse"
    assert job.url == "http://www.examplesite.com/viewjob.cfm?jobid=unique123131&source=Indeed"
    assert (job.city, job.state, job.zip, job.country) == ("Phoenix", "AZ", "85003", "US")
    assert job.description.startswith("<p>Do you have")
    assert job.category == "Nursing"
    assert job.keywords == ("registered", "nurse", "nursing")
    assert job.cpc_cents == 121  # $1.205 rounds half up
    assert job.posted_at_ms == 1766184579000  # Fri, 19 Dec 2025 22:49:39 GMT
    # No coordinates in the feed: the ZIP's centre stands in, so matching can place the job.
    assert job.lat == pytest.approx(33.45, abs=0.05) and job.lon == pytest.approx(-112.08, abs=0.05)


def test_xml_entities_outside_cdata_are_decoded():
    job = xml_job(title="Cook &amp; Prep &lt;Nights&gt;",
                  url="https://x.test/j?a=1&amp;b=2")
    [parsed] = parse_feed(xml_feed(job), "xml", "acme", "indeed").jobs
    assert parsed.title == "Cook & Prep <Nights>"
    assert parsed.url == "https://x.test/j?a=1&b=2"


def test_billion_laughs_entity_bomb_is_refused():
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<source><job><title>&lol4;</title><referencenumber>1</referencenumber>
<url>https://x.test/1</url></job></source>"""
    with pytest.raises(FeedError, match="unsafe"):
        parse_feed(bomb, "xml", "acme", "indeed")


def test_external_entity_is_refused():
    xxe = b"""<?xml version="1.0"?>
<!DOCTYPE source [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<source><job><title>&xxe;</title><referencenumber>1</referencenumber>
<url>https://x.test/1</url></job></source>"""
    with pytest.raises(FeedError, match="unsafe"):
        parse_feed(xxe, "xml", "acme", "indeed")


def test_entries_missing_fields_are_skipped_and_reported():
    body = xml_feed(xml_job(ref="ok-1"), xml_job(ref=""), xml_job(ref="no-title", title=""),
                    xml_job(ref="no-url", url=""), xml_job(ref="ftp", url="ftp://files.test/job"),
                    xml_job(ref="ok-1"))
    parsed = parse_feed(body, "xml", "acme", "indeed")
    assert [j.job_id for j in parsed.jobs] == ["ok-1"]
    assert parsed.problems == [
        "job 2: missing id (referencenumber)",
        "job 3: no-title: missing title",
        "job 4: no-url: missing url",
        "job 5: ftp: url 'ftp://files.test/job' is not an http(s) address",
        "job 6: duplicate id 'ok-1' (first at job 1)",
    ]


@pytest.mark.parametrize("cpc, message", [
    ("abc", "is not an amount in dollars"),
    ("-0.50", "must be a positive amount"),
    ("NaN", "must be a positive amount"),
    ("250", "above the $100 ceiling"),
])
def test_bad_cpc_skips_the_entry(cpc, message):
    parsed = parse_feed(xml_feed(xml_job(ref="good"), xml_job(ref="bad", cpc=cpc)),
                        "xml", "acme", "indeed")
    assert [j.job_id for j in parsed.jobs] == ["good"]
    assert len(parsed.problems) == 1
    assert parsed.problems[0].startswith("job 2: bad: cpc") and message in parsed.problems[0]


def test_cpc_forms_convert_to_cents():
    body = json_feed(json_job(id="a", cpc=0.35), json_job(id="b", cpc="$1.20"),
                     json_job(id="c", cpc="0.125"), json_job(id="d", cpc=None),
                     json_job(id="e", cpc=2))
    jobs = {j.job_id: j.cpc_cents for j in parse_feed(body, "json", "acme", "s").jobs}
    assert jobs == {"a": 35, "b": 120, "c": 13, "d": 0, "e": 200}


def test_json_feed_is_parsed():
    body = json_feed(json_job(title="  Forklift   Driver "), json_job(id="j-2", url="mailto:x@y"))
    parsed = parse_feed(body, "json", "acme", "partner")
    [job] = parsed.jobs
    assert job == Job(tenant="acme", job_id="j-1", source="partner", title="Forklift Driver",
                      company="Atlas Fulfillment", url="https://x.test/j-1", city="Los Angeles",
                      state="CA", zip="90012", country="US", lat=34.06, lon=-118.24,
                      description="Night shift.", category="Warehouse & Logistics",
                      keywords=("forklift", "driver", "warehouse", "logistics"),
                      posted_at_ms=1767081600000, cpc_cents=35)
    assert parsed.problems == ["job 2: j-2: url 'mailto:x@y' is not an http(s) address"]


def test_json_entry_that_is_not_an_object_is_reported():
    parsed = parse_feed(json.dumps({"jobs": [json_job(), "oops"]}).encode(), "json", "acme", "s")
    assert len(parsed.jobs) == 1 and parsed.problems == ["job 2: not an object"]


@pytest.mark.parametrize("body, fmt, message", [
    (b"", "xml", "empty"),
    (b"   \n", "json", "empty"),
    (b"<source><job><title>Nurse</title>", "xml", "not well-formed"),
    (b"<html><body>Login</body></html>", "xml", "lists no jobs"),
    (b'{"jobs": [{"id": "1"', "json", "not valid JSON"),
    (b'[{"id": "1"}]', "json", "'jobs' array"),
    (b'{"jobs": []}', "json", "lists no jobs"),
    (b'{"jobs": [{"id": "1"}, {"title": "x"}]}', "json", "none of the 2 jobs is usable"),
    (b"{}", "csv", "unknown feed format"),
])
def test_unusable_feeds_raise_feed_error(body, fmt, message):
    with pytest.raises(FeedError, match=message):
        parse_feed(body, fmt, "acme", "s")


def test_truncated_feed_raises_instead_of_returning_its_first_jobs():
    body = xml_feed(*(xml_job(ref=f"r{i}") for i in range(50)))
    with pytest.raises(FeedError):
        parse_feed(body[: len(body) // 2], "xml", "acme", "indeed")


@pytest.mark.parametrize("text, expected", [
    ("Fri, 19 Dec 2014 22:49:39 GMT", 1419029379000),
    ("2014-12-19T22:49:39Z", 1419029379000),
    ("2014-12-19T23:49:39+01:00", 1419029379000),
    ("2014-12-19", 1418947200000),
    ("last tuesday", 0),
    ("", 0),
])
def test_dates_parse_from_rfc2822_or_iso(text, expected):
    assert parse_date_ms(text) == expected


def test_keywords_drop_short_and_stop_words():
    assert keywords_of("Nurse - RN, Full Time / Urgently needed", "Health & Care") == (
        "nurse", "health", "care")


def job(job_id: str, source: str = "indeed", tenant: str = "acme", **over) -> Job:
    """A Job for the diff tests."""
    base = dict(tenant=tenant, job_id=job_id, source=source, title=f"Job {job_id}", company="Co",
                url=f"https://x.test/{job_id}", posted_at_ms=NOW_MS - 1000, cpc_cents=50)
    base.update(over)
    return Job(**base)


def as_known(*jobs: Job) -> dict[str, Job]:
    """A known-jobs map as the caller keeps it."""
    return {j.key: j for j in jobs}


def test_diff_posts_updates_and_expires():
    a, b, c = job("a"), job("b"), job("c")
    known = as_known(a, b, c)
    fetched = [a, replace(b, cpc_cents=75), job("d")]
    assert diff_feed(known, fetched, NOW_MS) == [
        ("job.updated", replace(b, cpc_cents=75)),
        ("job.posted", job("d")),
        ("job.expired", c),
    ]


def test_diff_leaves_other_sources_and_tenants_alone():
    other_source, other_tenant = job("x", source="ziprecruiter"), job("y", tenant="globex")
    known = as_known(job("a"), other_source, other_tenant)
    assert diff_feed(known, [job("a")], NOW_MS) == []


def test_diff_of_the_same_feed_twice_is_empty():
    fetched = [job("a"), job("b")]
    first = diff_feed({}, fetched, NOW_MS)
    known = as_known(*(j for _, j in first))
    assert diff_feed(known, fetched, NOW_MS + 60_000) == []


def test_dateless_job_is_stamped_when_first_seen_and_keeps_that_date():
    dateless = job("a", posted_at_ms=0)
    [(kind, posted)] = diff_feed({}, [dateless], NOW_MS)
    assert kind == "job.posted" and posted.posted_at_ms == NOW_MS
    assert diff_feed(as_known(posted), [dateless], NOW_MS + DAY) == []



def test_a_broken_feed_leaves_nothing_to_diff_so_nothing_expires():
    known = as_known(*(job(f"r{i}") for i in range(3)))
    good = xml_feed(*(xml_job(ref=f"r{i}") for i in range(3)))
    events: list = []
    for broken in (good[: len(good) // 2], b"", b"<source></source>"):
        with pytest.raises(FeedError):
            events += diff_feed(known, parse_feed(broken, "xml", "acme", "indeed").jobs, NOW_MS)
    assert events == []
