"""Compose one person's message — a job alert or a welcome — as an email (HTML + text) or an
SMS, with tracked links.

Pure: the caller passes the compiled template, the link codes (allocated from a counter),
the creatives and `now_ms`; the same context always composes the same message, so a re-send
after a crash is identical. Templates see tracked links only, never a job's raw URL or the
person's address, so no template can leak personal data into a URL or skip tracking.

Templates are told the truth to word it: which jobs are new to the lead (`job.new`,
`new_count`: first seen since its previous alert on the list, decided by the caller), that the
jobs come best match first, and for a welcome what the list is and when it sends (`list`).
An SMS fits the list's segments (1 by default): fewer jobs first, then shorter titles, then
words cut before the link; the link and the opt-out line always stay.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate
from typing import Protocol

from markupsafe import escape

from domain.creatives import Creative, pick_creative
from domain.jobs import Job
from domain.links import LinkKind, LinkRecord, tracked_url
from domain.schedule import parse_cadence, parse_send_time
from domain.sms_text import (encoding, fit, fold_to_gsm, normalise_for_gsm, segments, shorten_words,
                             tidy_punctuation)

DEFAULT_SMS_SEGMENTS = 1  # one GSM-7 segment (160 characters): a second one doubles the price
OPT_OUT_LINE = "Reply STOP to opt out"
MAX_SMS_JOBS = 3  # an SMS names at most this many jobs before it starts dropping them to fit
SMS_TITLE_LIMITS = (48, 36, 28, 20)  # then titles and employers are cut to these lengths, in turn
EMAIL_FIXED_LINKS = 5  # header pixel, footer pixel, unsubscribe, preferences, honeypot
DAY_MS = 86_400_000
_SEND_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # it goes into Message-ID and a header
_LINE_BREAKS = re.compile(r"[\r\n]+")
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")  # what may not stand in a List-Id label or Feedback-ID field
PLATFORM_ID = "leadstream"  # the last Feedback-ID field: who sent it for the brand
MERGE_KEYS = ("event", "attributes", "segments", "trigger", "digest")  # what a template message's context may add


class EmailTemplate(Protocol):
    """A compiled email template (see projections.templates): renders from plain data."""

    version: str

    def render_subject(self, data: Mapping) -> str: ...
    def render_html(self, data: Mapping) -> str: ...
    def render_text(self, data: Mapping) -> str: ...


class SmsTemplate(Protocol):
    """A compiled SMS template: renders the message from plain data."""

    version: str

    def render(self, data: Mapping) -> str: ...


class ComplianceError(ValueError):
    """A composed message lacks something the law requires (unsubscribe link, postal address)."""


@dataclass(frozen=True)
class TenantBrand:
    """What a message needs to know about the tenant sending it."""

    id: str
    name: str
    postal_address: str  # CAN-SPAM: a valid physical postal address in every email
    from_name: str
    from_address: str
    unsubscribe_mailto: str  # mailbox for the List-Unsubscribe mailto: fallback
    sms_max_segments: int = DEFAULT_SMS_SEGMENTS  # messages of no list (reply confirmations)


@dataclass(frozen=True)
class Recipient:
    """The lead as a message sees it; address is the email or phone and goes only in To."""

    lead_id: str
    address: str
    first_name: str = ""
    city: str = ""


@dataclass(frozen=True)
class ListFacts:
    """What a welcome tells about the list joined: its name for people and when it sends."""

    title: str  # "Daily job alerts"
    schedule: str  # "every weekday at 10:00 am"
    channel: str = "email"


@dataclass(frozen=True)
class EmailContext:
    """Everything compose_email needs; codes come from the caller's counter, in order."""

    tenant: TenantBrand
    lead: Recipient
    list: str
    send_id: str
    template: EmailTemplate
    jobs: Sequence[Job]  # in rank order
    codes: Sequence[str]  # signed short codes, at least email_codes_needed(len(jobs), bool(creatives))
    tracking_base_url: str
    now_ms: int
    creatives: Sequence[Creative] = ()
    campaign: str = ""
    partner: str = ""  # the lead's source, carried by its links into opens and clicks
    new_job_keys: frozenset[str] = frozenset()  # the jobs first seen since the lead's previous alert
    list_facts: ListFacts | None = None
    # merge data of a template message: the triggering event (`event`), the lead's attributes
    # (`attributes`), the segments they are in (`segments`); never overrides the keys above
    extra: Mapping[str, object] = field(default_factory=dict)
    # the recommendations block: (job, why) best first, why one of domain.recommend.WHY
    recommended: Sequence[tuple[Job, str]] = ()


@dataclass(frozen=True)
class SmsContext:
    """Everything compose_sms needs; one code is used (the top job's link)."""

    tenant: TenantBrand
    lead: Recipient
    list: str
    send_id: str
    template: SmsTemplate
    jobs: Sequence[Job]  # in rank order
    codes: Sequence[str]  # signed short codes (domain.links.signed_code)
    tracking_base_url: str
    now_ms: int
    campaign: str = ""
    max_segments: int | None = None  # the list's sms_segments; None: the tenant's sms_max_segments
    partner: str = ""  # the lead's source, carried by its links into opens and clicks
    new_job_keys: frozenset[str] = frozenset()  # the jobs first seen since the lead's previous alert
    list_facts: ListFacts | None = None
    # merge data of a template message: the triggering event (`event`), the lead's attributes
    # (`attributes`), the segments they are in (`segments`); never overrides the keys above
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ComposedEmail:
    """A ready email: the mailer adds nothing but the MIME structure and DKIM."""

    send_id: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    links: tuple[LinkRecord, ...]  # store each under its code before sending
    creative: Creative | None
    template_version: str


@dataclass(frozen=True)
class ComposedSms:
    """A ready SMS body with its segment count and encoding ("GSM-7" or "UCS-2")."""

    send_id: str
    to: str
    body: str
    segments: int
    encoding: str
    links: tuple[LinkRecord, ...]
    template_version: str


def email_codes_needed(n_jobs: int, has_creative: bool, n_recommended: int = 0, n_digest_items: int = 0) -> int:
    """How many link codes compose_email uses for this many jobs (and maybe a creative,
    recommended jobs, and a digest's items)."""
    return n_jobs + int(has_creative) + n_recommended + n_digest_items + EMAIL_FIXED_LINKS


def digest_items_of(extra: Mapping) -> list[dict]:
    """A digest message's items (its merge data's digest.items), each with the url it links to."""
    digest = extra.get("digest") or {}
    return [it for it in (digest.get("items") or []) if isinstance(it, dict) and it.get("url")]


def sms_codes_needed(n_jobs: int = 1) -> int:
    """How many link codes compose_sms uses: one (the top job's link), none without a job."""
    return 1 if n_jobs else 0


def list_title(list_id: str, title: str = "") -> str:
    """A list's name for people: its configured title, else its id in words ("daily-jobs" ->
    "Daily jobs")."""
    if title.strip():
        return " ".join(title.split())
    words = list_id.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else list_id


_DAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def schedule_phrase(send_time: str, cadence: str) -> str:
    """When a list sends, in words: "every weekday at 10:00 am", "every Monday and Thursday
    at 7:30 am", "once a week at 9:00 am"."""
    hour, minute = parse_send_time(send_time)
    clock = f"{(hour % 12) or 12}:{minute:02d} {'am' if hour < 12 else 'pm'}"
    c = parse_cadence(cadence)
    if c.days is None:
        when = "once a week"
    elif len(c.days) == 7:
        when = "every day"
    elif c.days == frozenset(range(5)):
        when = "every weekday"
    else:
        names = [_DAY_WORDS[d] for d in sorted(c.days)]
        when = "every " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
    return f"{when} at {clock}"


@dataclass
class _Linker:
    """Hands out the caller's codes in order and records what each one stands for."""

    base: dict
    codes: Sequence[str]
    base_url: str
    records: list[LinkRecord] = field(default_factory=list)

    def link(self, kind: LinkKind, slot: str, destination: str = "", job: Job | None = None,
             position: int = 0, creative: Creative | None = None) -> str:
        """The tracked URL for the next code, recording its LinkRecord."""
        code = self.codes[len(self.records)]
        cpc = job.cpc_cents if job else (creative.cpc_cents if creative else 0)
        self.records.append(LinkRecord(
            code=code, kind=kind, destination_url=destination, job_key=job.key if job else "",
            position=position, cpc_cents=cpc, creative=creative.id if creative else "",
            slot=slot, **self.base))
        return tracked_url(self.base_url, kind, code)


def _linker(ctx: EmailContext | SmsContext, needed: int) -> _Linker:
    """A linker for this send, once the codes and send id are checked."""
    if len(ctx.codes) < needed:
        raise ValueError(f"send {ctx.send_id}: {needed} link codes needed, {len(ctx.codes)} given")
    if not _SEND_ID.match(ctx.send_id):
        raise ValueError(f"send id must be 1-128 of [A-Za-z0-9._:-], got {ctx.send_id!r}")
    base = dict(send_id=ctx.send_id, tenant=ctx.tenant.id, lead_id=ctx.lead.lead_id,
                list=ctx.list, template=ctx.template.version, campaign=ctx.campaign,
                created_ms=ctx.now_ms, partner=ctx.partner)
    return _Linker(base=base, codes=ctx.codes, base_url=ctx.tracking_base_url)


def _present(d: dict) -> dict:
    """d without empty values, so `| default(...)` in a template applies to them."""
    return {k: v for k, v in d.items() if v not in ("", None)}


def _job_data(job: Job, position: int, link: str, now_ms: int, new: bool = False,
              title_limit: int | None = None) -> dict:
    """What a template sees of a job: its tracked link, never its raw URL; `new` when it was
    first seen since the lead's previous alert; title and employer cut to title_limit."""
    place = ", ".join(p for p in (job.city, job.state) if p)
    days = max(0, (now_ms - job.posted_at_ms) // DAY_MS) if job.posted_at_ms else None
    title, company = job.title, job.company
    if title_limit:
        title, company = shorten_words(title, title_limit), shorten_words(company, title_limit)
    return _present(dict(
        title=title, company=company, city=job.city, state=job.state, zip=job.zip,
        country=job.country, category=job.category, description=job.description,
        location=place, link=link, position=position, posted_days_ago=days)) | {"new": new}


def _common_data(ctx: EmailContext | SmsContext) -> dict:
    """Template data shared by email and SMS; the lead's address is deliberately absent.
    `list_info` (title, schedule, channel) is there when the caller gave the list's facts."""
    facts = ctx.list_facts
    info = None if facts is None else dict(title=facts.title, schedule=facts.schedule, channel=facts.channel)
    return dict(
        tenant=_present(dict(name=ctx.tenant.name, postal_address=ctx.tenant.postal_address,
                             from_name=ctx.tenant.from_name)),
        lead=_present(dict(first_name=ctx.lead.first_name, city=ctx.lead.city)),
        list=ctx.list, list_info=info, job_count=len(ctx.jobs), now_ms=ctx.now_ms,
        new_count=sum(1 for j in ctx.jobs if j.key in ctx.new_job_keys),
        **{k: v for k, v in ctx.extra.items() if k in MERGE_KEYS})


def _one_line(text: str) -> str:
    """Header-safe: no line breaks (header injection), single spaces."""
    return " ".join(_LINE_BREAKS.sub(" ", text).split())


def list_id(list_name: str, from_address: str) -> str:
    """RFC 2919 List-Id: the list's name as a label under the brand's domain (stable per list)."""
    domain = from_address.rpartition("@")[2].lower()
    label = _NOT_LABEL.sub("-", list_name.lower()).strip("-") or "list"
    return f"{label}.{domain}"


def feedback_id(campaign: str, list_name: str, tenant: str) -> str:
    """Gmail's Feedback-ID, campaign:list:brand:platform; never unique per message or person, so
    complaint rates can be read per campaign, list and brand."""
    parts = (campaign or "alert", list_name, tenant, PLATFORM_ID)
    return ":".join(_NOT_LABEL.sub("-", p.lower()) for p in parts)


def _email_headers(ctx: EmailContext, unsubscribe_url: str) -> dict[str, str]:
    """The headers the mailer sets as they are (it adds Subject, MIME and DKIM)."""
    domain = ctx.tenant.from_address.rpartition("@")[2]
    name = _one_line(ctx.tenant.name or ctx.tenant.from_name)
    return {
        "From": formataddr((_one_line(ctx.tenant.from_name), ctx.tenant.from_address)),
        "To": formataddr((_one_line(ctx.lead.first_name), ctx.lead.address)),
        "Date": formatdate(ctx.now_ms / 1000, usegmt=True),
        "Message-ID": f"<{ctx.send_id}@{domain}>",  # stable, so a re-send is recognisably the same
        # RFC 8058: the HTTPS URI takes a one-click POST; mailto is the fallback for old clients.
        "List-Unsubscribe": f"<{unsubscribe_url}>, <mailto:{ctx.tenant.unsubscribe_mailto}?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{_list_phrase(name, ctx.list)} <{list_id(ctx.list, ctx.tenant.from_address)}>",
        "Feedback-ID": feedback_id(ctx.campaign, ctx.list, ctx.tenant.id),
        # RFC 3834: made by a program, not a person; auto-responders must not answer it
        "Auto-Submitted": "auto-generated",
        "X-Leadstream-Send": ctx.send_id,
    }


def _list_phrase(brand: str, list_name: str) -> str:
    """The List-Id's description as an RFC 5322 phrase (quoted, so any brand name is safe)."""
    text = f"{brand} {list_name}".replace("\\", "").replace('"', "")
    if not text.isascii():  # an RFC 2047 encoded word keeps the angle-bracketed id readable
        return Header(text, "utf-8").encode()
    return f'"{text}"'


def _check_footer(ctx: EmailContext, html: str, text: str, unsubscribe_url: str,
                  preferences_url: str) -> None:
    """Refuse to send an email without an unsubscribe link, a preference link ("manage this
    alert") and a postal address in both parts."""
    address = ctx.tenant.postal_address
    missing = [what for what, ok in (
        ("unsubscribe link in HTML", unsubscribe_url in html),
        ("unsubscribe link in text", unsubscribe_url in text),
        ("preference link in HTML", preferences_url in html),
        ("preference link in text", preferences_url in text),
        ("postal address in HTML", str(escape(address)) in html),
        ("postal address in text", address in text),
    ) if not ok]
    if not address or missing:
        raise ComplianceError(f"template {ctx.list}@{ctx.template.version} for tenant "
                              f"{ctx.tenant.id} lacks: {', '.join(missing) or 'a postal address'}")


def _creative_for(ctx: EmailContext) -> Creative | None:
    """The send's creative, or None when the list has no live creative (the block is left out)."""
    live = [c for c in ctx.creatives if c.weight > 0]
    return pick_creative(live, ctx.send_id) if live else None


_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)


def _with_honeypot(html: str, url: str) -> str:
    """html with a link no person can see or reach by keyboard, right after <body>: only
    machines that fetch every URL of a message follow it (the bot filter counts on that)."""
    trap = (f'<a href="{url}" style="display:none!important;mso-hide:all" aria-hidden="true" '
            f'tabindex="-1"></a>')
    m = _BODY_OPEN.search(html)
    at = m.end() if m else 0
    return html[:at] + trap + html[at:]


def compose_email(ctx: EmailContext) -> ComposedEmail:
    """The email for one send: subject, HTML and text parts, headers and the links to store."""
    creative = _creative_for(ctx)
    digest_items = digest_items_of(ctx.extra)
    linker = _linker(ctx, email_codes_needed(len(ctx.jobs), creative is not None, len(ctx.recommended),
                                             len(digest_items)))
    pixel_top = linker.link("open", "pixel_top")
    jobs = [_job_data(job, i, linker.link("click", "job", job.url, job=job, position=i), ctx.now_ms,
                      job.key in ctx.new_job_keys)
            for i, job in enumerate(ctx.jobs, start=1)]
    # their clicks carry the slot "recommended" (and feed the next training like any job's)
    recommended = [_job_data(job, i, linker.link("click", "recommended", job.url, job=job, position=i), ctx.now_ms)
                   | {"why": why} for i, (job, why) in enumerate(ctx.recommended, start=1)]
    # a digest's items link through the tracking front like jobs (slot "digest"); the template
    # sees item.link, never the raw url
    digest = [{k: v for k, v in it.items() if k != "url"}
              | {"link": linker.link("click", "digest", it["url"], position=i)}
              for i, it in enumerate(digest_items, start=1)]
    creative_data = None
    if creative:
        creative_data = _present(dict(
            id=creative.id, headline=creative.headline, body=creative.body, cta=creative.cta,
            image_url=creative.image_url,
            link=linker.link("click", "creative", creative.url, creative=creative)))
    pixel_bottom = linker.link("open", "pixel_bottom")
    unsubscribe = linker.link("unsubscribe", "unsubscribe")
    preferences = linker.link("preferences", "preferences")
    data = _common_data(ctx) | dict(jobs=jobs, recommended=recommended, creative=creative_data, pixel_top=pixel_top,
                                    pixel_bottom=pixel_bottom, unsubscribe_url=unsubscribe,
                                    preferences_url=preferences)
    if "digest" in data:
        data["digest"] = {**data["digest"], "items": digest}
    subject = _one_line(ctx.template.render_subject(data))
    data["subject"] = subject
    html, text = ctx.template.render_html(data), ctx.template.render_text(data)
    _check_footer(ctx, html, text, unsubscribe, preferences)
    html = _with_honeypot(html, linker.link("click", "honeypot"))
    return ComposedEmail(send_id=ctx.send_id, subject=subject, html=html, text=text,
                         headers=_email_headers(ctx, unsubscribe), links=tuple(linker.records),
                         creative=creative, template_version=ctx.template.version)


def _sms_body(ctx: SmsContext, shown: int, link: str, title_limit: int | None = None) -> str:
    """The rendered SMS naming the top `shown` jobs, GSM-normalised, punctuation joined once
    ("Acme Co." + "." is "Acme Co."), with link and opt-out."""
    jobs = [_job_data(j, i, link, ctx.now_ms, j.key in ctx.new_job_keys, title_limit)
            for i, j in enumerate(ctx.jobs[:shown], start=1)]
    data = _common_data(ctx) | dict(jobs=jobs, link=link, more=len(ctx.jobs) - shown)
    body = tidy_punctuation(normalise_for_gsm(ctx.template.render(data)).strip())
    if link and link not in body:  # a template that forgot the link still sends a working message
        body = f"{body} {link}"
    if "STOP" not in body:  # the opt-out instruction is not optional (TCPA/CTIA)
        body = f"{body}\n{OPT_OUT_LINE}"
    return body


def _fits(body: str, max_segments: int) -> bool:
    """Whether body goes out in at most max_segments SMS segments."""
    return segments(body)[0] <= max_segments


def _shorten_before_link(body: str, link: str, max_segments: int) -> str | None:
    """body with words dropped from the end of the text before the link (or, without a link,
    before the opt-out line) until it fits."""
    if not link:
        link = "\n" + OPT_OUT_LINE if ("\n" + OPT_OUT_LINE) in body else OPT_OUT_LINE
    head, _, rest = body.partition(link)
    tail = link + rest
    words = head.split(" ")
    for n in range(len(words) - 1, 0, -1):
        candidate = tidy_punctuation(" ".join(words[:n]).rstrip(" ,;:-") + "... ") + tail
        if _fits(candidate, max_segments) and "STOP" in candidate:
            return candidate
    return tail if _fits(tail, max_segments) and "STOP" in tail else None


def _sms_attempts(ctx: SmsContext, link: str):
    """The SMS bodies to try, longest first: fewer jobs, then shorter titles and employers."""
    most = min(MAX_SMS_JOBS, len(ctx.jobs))
    for shown in range(most, 0, -1):
        yield _sms_body(ctx, shown, link)
    for limit in SMS_TITLE_LIMITS:
        yield _sms_body(ctx, min(most, 1), link, limit)
    if not ctx.jobs:
        yield _sms_body(ctx, 0, link)


def compose_sms(ctx: SmsContext) -> ComposedSms:
    """The SMS for one send: top job(s), one tracked short link, opt-out, within the list's
    segments (a welcome may name no job: then it has no link)."""
    max_segments = ctx.max_segments or ctx.tenant.sms_max_segments
    linker = _linker(ctx, sms_codes_needed(len(ctx.jobs)))
    link = ""
    if ctx.jobs:
        top = ctx.jobs[0]
        link = linker.link("click", "sms", top.url, job=top, position=1)  # slot "sms": the click came from a text
    # Drop jobs before cutting titles, and titles before words: a whole job name beats three cut ones.
    for body in _sms_attempts(ctx, link):
        if _fits(body, max_segments):
            break
        folded = fold_to_gsm(body)  # "Zoë" as "Zoe" rather than a message in UCS-2 (70 a segment)
        if folded != body and _fits(folded, max_segments):
            body = folded
            break
    else:
        body = _shorten_before_link(fold_to_gsm(body), link, max_segments)
        if body is None:
            raise ValueError(f"send {ctx.send_id}: link and opt-out alone exceed {max_segments} segments")
    return ComposedSms(send_id=ctx.send_id, to=ctx.lead.address, body=body,
                       segments=segments(body)[0], encoding=encoding(body),
                       links=tuple(linker.records), template_version=ctx.template.version)


REPLY_TEMPLATE = "reply"


def compose_reply(send_id: str, to: str, text: str, max_segments: int) -> ComposedSms:
    """The answer to an SMS reply (STOP / HELP / START confirmation): fixed text, no links."""
    body = fit(normalise_for_gsm(text).strip(), max_segments)
    return ComposedSms(send_id=send_id, to=to, body=body, segments=segments(body)[0],
                       encoding=encoding(body), links=(), template_version=REPLY_TEMPLATE)
