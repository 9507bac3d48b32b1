"""Partner job feeds (Indeed-style XML or JSON) parsed into Jobs, and a fetched feed diffed
against the jobs already known. Pure: bytes in, Jobs and events out."""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, Iterator, Literal
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from domain import geo
from domain.jobs import Job

FeedFormat = Literal["xml", "json"]

# A feed that puts cents in the dollars field would otherwise bid 100x; no partner pays this.
MAX_CPC_DOLLARS = Decimal("100")
MIN_KEYWORD_LETTERS = 3
# Words that say nothing about the kind of work, so they must not make two jobs look alike.
STOP_WORDS = frozenset("""
    a an and are as at be but by for from has have in into is it its of on or our per the
    their this to was were will with you your we all any
    job jobs hiring now immediate immediately urgent urgently needed wanted apply position
    positions opening openings opportunity new full part time week weekly bonus sign
""".split())
_WORD = re.compile(r"[^\W\d_]+")
_SPACES = re.compile(r"\s+")


class FeedError(ValueError):
    """The whole feed is unusable (not parseable, wrong shape, or no usable job)."""


@dataclass(frozen=True)
class FeedParse:
    """The usable jobs of a feed and one 'job N: what is wrong' line per skipped entry."""

    jobs: list[Job] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Skip(ValueError):
    """One entry is unusable; its message says why."""


def parse_feed(body: bytes, fmt: FeedFormat, tenant: str, source: str) -> FeedParse:
    """Parse a whole feed body; raises FeedError when nothing trustworthy can be taken from it."""
    if not body or not body.strip():
        raise FeedError(f"{source}: the feed body is empty")
    if fmt == "xml":
        entries = _xml_entries(body, source)
    elif fmt == "json":
        entries = _json_entries(body, source)
    else:
        raise FeedError(f"{source}: unknown feed format {fmt!r} (expected 'xml' or 'json')")
    return _collect(entries, tenant, source)


def _collect(entries: list[dict[str, Any]], tenant: str, source: str) -> FeedParse:
    """Turn raw entries into Jobs, skipping (and reporting) the unusable ones."""
    if not entries:
        raise FeedError(f"{source}: the feed lists no jobs")
    jobs: list[Job] = []
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    for n, raw in enumerate(entries, start=1):
        try:
            job = _job_from(raw, tenant, source)
            if job.job_id in first_seen:
                raise _Skip(f"duplicate id {job.job_id!r} (first at job {first_seen[job.job_id]})")
        except _Skip as exc:
            problems.append(f"job {n}: {exc}")
            continue
        first_seen[job.job_id] = n
        jobs.append(job)
    if not jobs:
        # Every entry bad looks like a broken export; treating it as "no jobs" would expire them all.
        raise FeedError(f"{source}: none of the {len(entries)} jobs is usable; first: {problems[0]}")
    return FeedParse(jobs=jobs, problems=problems)


def _xml_entries(body: bytes, source: str) -> list[dict[str, Any]]:
    """Read every <job> element as a dict of child tag -> text, refusing DTD entity tricks."""
    try:
        return list(_iter_xml_jobs(body))
    except DefusedXmlException as exc:
        raise FeedError(f"{source}: the XML feed was refused as unsafe ({exc!r})") from exc
    except ParseError as exc:
        # A truncated download must fail whole: its missing tail would otherwise look expired.
        raise FeedError(f"{source}: the XML feed is not well-formed ({exc})") from exc


def _iter_xml_jobs(body: bytes) -> Iterator[dict[str, Any]]:
    """Stream <job> elements and clear each one, so a large feed is not held as a tree."""
    root = None
    for event, elem in safe_et.iterparse(io.BytesIO(body), events=("start", "end"),
                                         forbid_dtd=False, forbid_entities=True,
                                         forbid_external=True):
        if root is None:
            root = elem
        if event == "end" and _local(elem.tag) == "job":
            yield {_local(child.tag).lower(): "".join(child.itertext()) for child in elem}
            elem.clear()
            root.clear()


def _local(tag: str) -> str:
    """A tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _json_entries(body: bytes, source: str) -> list[dict[str, Any]]:
    """Read the 'jobs' array; numbers become Decimals so money is exact."""
    try:
        doc = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{source}: the JSON feed is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise FeedError(f"{source}: the JSON feed must be an object with a 'jobs' array")
    return [e if isinstance(e, dict) else {"__not_an_object__": True} for e in doc["jobs"]]


def _job_from(raw: dict[str, Any], tenant: str, source: str) -> Job:
    """One entry (XML tag names or JSON keys) as a normalised Job."""
    if raw.get("__not_an_object__"):
        raise _Skip("not an object")
    job_id = _text(_first(raw, "referencenumber", "id"))
    title = _text(_first(raw, "title"))
    url = _text(_first(raw, "url"))
    if not job_id:
        raise _Skip("missing id (referencenumber)")
    if not title:
        raise _Skip(f"{job_id}: missing title")
    if not url:
        raise _Skip(f"{job_id}: missing url")
    if not _is_web_url(url):
        raise _Skip(f"{job_id}: url {url[:80]!r} is not an http(s) address")
    category = _text(_first(raw, "category"))
    country = (_text(_first(raw, "country")) or "US").upper()
    zip_code = _zip(_text(_first(raw, "postalcode", "zip")), country)
    lat, lon = _point(raw, zip_code, country)
    return Job(
        tenant=tenant, job_id=job_id, source=source, title=title,
        company=_text(_first(raw, "company")), url=url,
        city=_text(_first(raw, "city")), state=_text(_first(raw, "state")).upper(),
        zip=zip_code, country=country, lat=lat, lon=lon,
        description=_text(_first(raw, "description"), collapse=False),
        category=category, keywords=keywords_of(title, category),
        posted_at_ms=parse_date_ms(_text(_first(raw, "date", "posted_at"))),
        cpc_cents=_cpc_cents(_first(raw, "cpc"), job_id))


def _first(raw: dict[str, Any], *names: str) -> Any:
    """The first of several field names present in the entry."""
    for name in names:
        if raw.get(name) is not None:
            return raw[name]
    return None


def _text(value: Any, collapse: bool = True) -> str:
    """A trimmed string; titles and names also lose runs of whitespace and line breaks."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = str(value).strip()
    return _SPACES.sub(" ", text) if collapse else text


def _is_web_url(url: str) -> bool:
    """True for an absolute http(s) address with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _zip(value: str, country: str) -> str:
    """US ZIP+4 shortened to its five digits; other postcodes kept as given."""
    if country == "US":
        match = re.match(r"^(\d{5})(?:-?\d{4})?$", value)
        return match.group(1) if match else value
    return value


def _point(raw: dict[str, Any], zip_code: str, country: str) -> tuple[float | None, float | None]:
    """The feed's own coordinates when valid, else the centre of its US ZIP, else none."""
    lat = _coordinate(_first(raw, "lat", "latitude"), 90)
    lon = _coordinate(_first(raw, "lon", "lng", "longitude"), 180)
    if lat is not None and lon is not None:
        return lat, lon
    if country == "US" and zip_code:
        point = geo.zip_point(zip_code)
        if point:
            return point
    return None, None


def _coordinate(value: Any, limit: float) -> float | None:
    """A float within ±limit, or None for anything else."""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if -limit <= number <= limit else None


def _cpc_cents(value: Any, job_id: str) -> int:
    """Dollars (number or string, '$' allowed) to whole cents, rounding half up; absent is 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise _Skip(f"{job_id}: cpc {value!r} is not an amount in dollars")
    text = str(value).strip().lstrip("$").strip()
    try:
        dollars = Decimal(text)
    except InvalidOperation:
        raise _Skip(f"{job_id}: cpc {str(value)[:20]!r} is not an amount in dollars") from None
    if not dollars.is_finite() or dollars < 0:
        raise _Skip(f"{job_id}: cpc {text!r} must be a positive amount in dollars")
    if dollars > MAX_CPC_DOLLARS:
        raise _Skip(f"{job_id}: cpc ${text} is above the ${MAX_CPC_DOLLARS} ceiling (cents sent as dollars?)")
    return int((dollars * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def keywords_of(*texts: str) -> tuple[str, ...]:
    """Distinct lower-case words of the texts (3+ letters, no stop words), in first-seen order."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(text.lower()):
            if len(word) >= MIN_KEYWORD_LETTERS and word not in STOP_WORDS:
                seen.setdefault(word, None)
    return tuple(seen)


def parse_date_ms(text: str) -> int:
    """RFC 2822 or ISO 8601 as epoch ms (no zone means UTC); 0 when absent or unreadable."""
    if not text:
        return 0
    moment = _iso(text) or _rfc2822(text)
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0, int(moment.timestamp() * 1000))


def _iso(text: str) -> datetime | None:
    """ISO 8601 (with 'Z'), or None."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _rfc2822(text: str) -> datetime | None:
    """RFC 2822 ('Fri, 19 Dec 2014 22:49:39 GMT'), or None."""
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def diff_feed(known: dict[str, Job], fetched: list[Job], now_ms: int) -> list[tuple[str, Job]]:
    """Events that bring `known` in line with a freshly fetched feed.

    ("job.posted", job) for a new key, ("job.updated", job) when any field changed and
    ("job.expired", job) for a known job of a fetched tenant+source that the feed no longer lists.
    Call it only with the jobs of a feed that parse_feed accepted: a feed that is down,
    truncated or malformed raises before this point, so it can never expire anything.
    A job the feed gives no date is stamped with `now_ms` when first seen and keeps that date.
    """
    events: list[tuple[str, Job]] = []
    fetched_keys: set[str] = set()
    feeds: set[tuple[str, str]] = set()
    for job in fetched:
        if job.key in fetched_keys:
            continue
        fetched_keys.add(job.key)
        feeds.add((job.tenant, job.source))
        before = known.get(job.key)
        job = _dated(job, before, now_ms)
        if before is None:
            events.append(("job.posted", job))
        elif job != before:
            events.append(("job.updated", job))
    for key in sorted(known):
        job = known[key]
        if (job.tenant, job.source) in feeds and key not in fetched_keys:
            events.append(("job.expired", job))
    return events


def _dated(job: Job, before: Job | None, now_ms: int) -> Job:
    """A dateless job keeps its first-seen time, so freshness works and it does not flap as updated."""
    if job.posted_at_ms:
        return job
    return replace(job, posted_at_ms=before.posted_at_ms if before else now_ms)
