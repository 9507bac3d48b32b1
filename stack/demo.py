"""`./dev demo`: send a few thousand realistic leads through the running stack and show
what became of them.

The leads are generated from a seeded `random.Random` (the same `--seed` gives the same
mix), spread over the demo brands of the tenant file, and posted to the ingress API in
batches with each brand's demo key. A short run id goes into every address, so each run
makes new people; the only duplicates are the ones planted on purpose. The mix:

  ~8% malformed emails or phones      ~5% disposable email domains
  ~2% blocklisted addresses/domains   ~3% SMS leads without consent
  ~10% the same person again (other list, other case or spacing, other phone format)

Then ClickHouse is polled until every submitted lead has its decision (accepted,
rejected or resubmitted), and a per-brand summary is read back from it. The stack is left
running. Run it with `./dev demo`, or `python -m stack.demo --leads 1500` once it is up.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import string
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
import phonenumbers
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                           TextColumn, TimeElapsedColumn)
from rich.table import Table

from domain.identity import identity_phone
from domain.tenants import Tenant
from projections.clickhouse import connect
from streams.settings import Settings, get_settings, load_tenants

DECIDED = ("lead.accepted", "lead.rejected", "lead.resubmitted")
SHARES = {"invalid": 0.08, "disposable": 0.05, "blocklisted": 0.02, "no_consent": 0.03}
DUPLICATE_SHARE = 0.10
SMS_SHARE = 0.35  # of a brand's leads, when it has an SMS list
BRAND_WEIGHTS = (0.45, 0.30, 0.25)  # in tenant-file order; further brands get the last one
POLL_SECONDS = 0.5
RETRIES_503 = 4
MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
MAX_QUERY_SIZE = 64_000_000  # the id lists are sent inline, one IN (...) per query

FIRST_NAMES = ("Ann", "James", "Maria", "Robert", "Linda", "Michael", "Patricia", "David",
               "Jennifer", "Carlos", "Aisha", "Wei", "Priya", "Tom", "Fatima", "Kevin",
               "Sofia", "Daniel", "Grace", "Luis", "Emily", "Omar", "Hannah", "Jamal",
               "Chloe", "Noah", "Olivia", "Ethan", "Zoe", "Samuel", "Mei", "Diego")
LAST_NAMES = ("Smith", "Johnson", "Garcia", "Brown", "Jones", "Miller", "Davis", "Martinez",
              "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Lee",
              "Nguyen", "Patel", "Khan", "Walker", "Young", "King", "Wright", "Scott",
              "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Evans", "Okafor")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
DISPOSABLE_DOMAINS = ("mailinator.com", "guerrillamail.com", "10minutemail.com",
                      "yopmail.com", "sharklasers.com", "trashmail.com")
BLOCKED_DOMAINS = ("spamtrap.example", "blocked-domain.example")
BLOCKED_EMAILS = ("blocked.person@gmail.com", "abuse@spamtrap.example")
BLOCKED_PHONE = "+15005550006"
ANY_PARTNERS = ("google-ads", "meta-leadgen", "tiktok-ads", "referral", "landing-page")
CONSENT_IPS = ("192.0.2.", "198.51.100.", "203.0.113.")

# (city, state or region, zip or postcode[, area codes for mobile numbers])
US_CITIES = (("New York", "NY", "10001", (212, 646, 917)), ("San Francisco", "CA", "94103", (415, 628)),
             ("Chicago", "IL", "60601", (312, 773)), ("Boston", "MA", "02108", (617, 857)),
             ("Seattle", "WA", "98101", (206,)), ("Austin", "TX", "78701", (512,)),
             ("Denver", "CO", "80202", (303, 720)), ("Atlanta", "GA", "30303", (404, 678)),
             ("Miami", "FL", "33130", (305, 786)), ("Los Angeles", "CA", "90012", (213, 323)),
             ("Phoenix", "AZ", "85004", (602,)), ("Philadelphia", "PA", "19107", (215, 267)))
CA_CITIES = (("Toronto", "ON", "M5V 2T6", (416, 647)), ("Vancouver", "BC", "V6B 1A1", (604,)))
GB_CITIES = (("London", "England", "E1 6AN"), ("Manchester", "England", "M1 1AE"),
             ("Leeds", "England", "LS1 4DY"), ("Glasgow", "Scotland", "G1 1XQ"))

THEMES = {  # a word in the list name -> (keywords, categories)
    "nurse": (("registered nurse", "rn", "icu", "night shift", "travel nurse"), ("healthcare",)),
    "tech": (("python", "react", "devops", "data engineer", "remote"), ("technology", "software")),
    "warehouse": (("forklift", "picker packer", "warehouse associate", "loader"), ("logistics",)),
    "shift": (("barista", "line cook", "cashier", "event staff", "weekend"), ("hospitality", "retail")),
}
GENERAL_THEME = (("customer service", "driver", "admin assistant", "sales", "part time",
                  "full time", "receptionist"), ("general", "retail", "office"))
MALFORMED_EMAILS = ("{local}@@{domain}", "{local}.{domain}", "{local}@{bare}", "{first} {last}@{domain}",
                    "{local}..x@{domain}", "@{domain}", "{local}@{under}")
MALFORMED_PHONES = ("n/a", "12345", "(000) 123-4567", "+1 {area} 123 4567", "{area}-{ex}-678",
                    "{area}-00-1234", "call me", "555")


@dataclass
class Brand:
    """A demo tenant as the generator needs it."""

    tenant: Tenant
    key: str
    weight: float

    @property
    def id(self) -> str:
        return self.tenant.id

    def lists_for(self, channel: str) -> list[str]:
        return sorted(n for n, lst in self.tenant.lists.items() if lst.channel == channel)

    @property
    def has_sms(self) -> bool:
        return "sms" in self.tenant.channels and bool(self.lists_for("sms"))

    @property
    def countries(self) -> tuple[str, ...]:
        allowed = self.tenant.validation.allowed_countries
        return tuple(c for c in ("US", "CA", "GB") if not allowed or c in allowed) or ("US",)


@dataclass
class Person:
    """Who a lead is about (the phone is E.164 here; partners format it their own way)."""

    first: str
    last: str
    email: str
    phone: str
    location: dict


@dataclass
class Planned:
    """One lead to post: its brand, its body, and what the generator meant it to be."""

    brand: str
    body: dict
    kind: str
    order: float


@dataclass
class Submitted:
    """What the API told us about the leads it took."""

    event_ids: list[str] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)
    by_brand: Counter = field(default_factory=Counter)
    failed_batches: int = 0
    failed_leads: int = 0


class DemoError(Exception):
    """A reason to stop the demo, with a message for the person running it."""


# ---- generating leads ---------------------------------------------------------------------

def demo_brands(settings: Settings) -> list[Brand]:
    book = load_tenants(settings.tenants_file)
    tenants = [t for t in book.tenants.values() if t.demo_key]
    if not tenants:
        raise DemoError(f"no tenant in {settings.tenants_file} has a demo_key: nothing to send as")
    return [Brand(t, t.demo_key, BRAND_WEIGHTS[min(i, len(BRAND_WEIGHTS) - 1)])
            for i, t in enumerate(tenants)]


def plan_kinds(total: int, n_fresh: int, rng: random.Random) -> list[str]:
    """The kind of each first-time lead, with the shares of SHARES over the whole run."""
    kinds = [k for k, share in SHARES.items() for _ in range(round(total * share))]
    kinds = kinds[:n_fresh] + ["clean"] * max(0, n_fresh - len(kinds))
    rng.shuffle(kinds)
    return kinds


def pick_brand(brands: list[Brand], kind: str, rng: random.Random) -> Brand:
    fits = [b for b in brands if kind != "no_consent" or b.has_sms]
    return rng.choices(fits, weights=[b.weight for b in fits])[0]


def pick_channel(brand: Brand, kind: str, rng: random.Random) -> str:
    if kind == "no_consent":
        return "sms"
    if kind == "disposable" or not brand.has_sms or not brand.lists_for("email"):
        return "email" if brand.lists_for("email") else "sms"
    return "sms" if rng.random() < SMS_SHARE else "email"


def theme_for(list_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    for word, theme in THEMES.items():
        if word in list_name:
            return theme
    return GENERAL_THEME


def make_location(country: str, rng: random.Random) -> tuple[dict, tuple[int, ...]]:
    if country == "GB":
        city, region, postcode = rng.choice(GB_CITIES)
        return {"zip": postcode, "city": city, "state": region, "country": "GB"}, ()
    city, state, zip_code, areas = rng.choice(US_CITIES if country == "US" else CA_CITIES)
    return {"zip": zip_code, "city": city, "state": state, "country": country}, areas


class PhoneBook:
    """Valid mobile numbers (as phonenumbers sees them), none twice in a run; drawn from a
    generator seeded with the run id too, so another run does not meet this run's people."""

    def __init__(self, seed: int, run: str):
        self.rng = random.Random(f"{seed}:{run}")
        self.used: set[str] = set()

    def number(self, country: str, areas: tuple[int, ...]) -> str:
        while True:
            n = self._gb() if country == "GB" else self._nanp(areas)
            if n not in self.used and is_mobile_of(n, country):
                self.used.add(n)
                return n

    def _nanp(self, areas: tuple[int, ...]) -> str:
        exchange = self.rng.randint(200, 999)
        while exchange % 100 == 11 or exchange == 555:
            exchange = self.rng.randint(200, 999)
        return f"+1{self.rng.choice(areas)}{exchange}{self.rng.randint(0, 9999):04d}"

    def _gb(self) -> str:
        return f"+447{self.rng.randint(400, 599)}{self.rng.randint(0, 999999):06d}"


def is_mobile_of(e164: str, country: str) -> bool:
    num = phonenumbers.parse(e164)
    return (phonenumbers.is_valid_number(num) and phonenumbers.region_code_for_number(num) == country
            and phonenumbers.number_type(num) in MOBILE_TYPES)


def make_person(brand: Brand, run: str, rng: random.Random, phones: PhoneBook,
                emails: set[str]) -> Person:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    country = rng.choices(brand.countries, weights=[{"US": 8, "CA": 1, "GB": 3}[c]
                                                    for c in brand.countries])[0]
    location, areas = make_location(country, rng)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}",
                        f"{first}{last[0]}")).lower()
    email = unique_email(local, run, rng.choice(EMAIL_DOMAINS), emails)
    return Person(first, last, email, phones.number(country, areas), location)


def unique_email(local: str, run: str, domain: str, used: set[str]) -> str:
    """local.run@domain, or local2.run@domain... if someone of this run has it already."""
    email, n = f"{local}.{run}@{domain}", 1
    while email in used:
        n += 1
        email = f"{local}{n}.{run}@{domain}"
    used.add(email)
    return email


def display_phone(e164: str, default_region: str, rng: random.Random) -> str:
    """A phone as partners send it: E.164, international, or national when that reads back
    as the same number in the brand's default region."""
    num = phonenumbers.parse(e164)
    styles = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]
    if num.country_code == phonenumbers.country_code_for_region(default_region):
        styles += [phonenumbers.PhoneNumberFormat.NATIONAL] * 2
    return phonenumbers.format_number(num, rng.choice(styles))


def spoil_contact(person: Person, channel: str, rng: random.Random) -> None:
    """Make the lead's contact point for its channel malformed."""
    if channel == "email":
        local, domain = person.email.split("@")
        person.email = rng.choice(MALFORMED_EMAILS).format(
            local=local, domain=domain, bare=domain.split(".")[0], first=person.first.lower(),
            last=person.last.lower(), under=domain.replace(".", "_", 1))
    else:
        d = person.phone[2:]
        person.phone = rng.choice(MALFORMED_PHONES).format(area=d[:3], ex=d[3:6])


def apply_kind(person: Person, kind: str, channel: str, rng: random.Random) -> None:
    if kind == "invalid":
        spoil_contact(person, channel, rng)
    elif kind == "disposable":
        person.email = f"{person.email.split('@')[0]}@{rng.choice(DISPOSABLE_DOMAINS)}"
    elif kind == "blocklisted" and channel == "sms":
        person.phone = BLOCKED_PHONE
    elif kind == "blocklisted":
        person.email = rng.choice((*BLOCKED_EMAILS,
                                   *(f"{person.email.split('@')[0]}@{d}" for d in BLOCKED_DOMAINS)))


def consent(brand: Brand, now: datetime, rng: random.Random, with_ip: bool) -> dict:
    at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 14))
    body = {"at": at.isoformat(timespec="seconds"),
            "text": f"I agree to receive job alerts from {brand.tenant.name}. "
                    f"Msg & data rates may apply. Reply STOP to cancel."}
    if with_ip:
        body["ip"] = f"{rng.choice(CONSENT_IPS)}{rng.randint(1, 254)}"
    return body


def attribution(partner: str, list_name: str, rng: random.Random) -> dict[str, str]:
    medium = {"google-ads": "cpc", "meta-leadgen": "paid_social", "tiktok-ads": "paid_social",
              "referral": "referral", "landing-page": "organic"}.get(partner, "affiliate")
    utm = {"utm_source": partner, "utm_medium": medium,
           "utm_campaign": f"{list_name}-{rng.choice(('spring', 'summer', 'q3', 'always-on'))}"}
    if rng.random() < 0.5:
        utm["utm_content"] = rng.choice(("banner-a", "banner-b", "video", "carousel"))
    return utm


def lead_body(brand: Brand, person: Person, channel: str, list_name: str, kind: str,
              now: datetime, rng: random.Random) -> dict:
    """A partner payload in the shape of domain.lead_input.LeadIn."""
    keywords, categories = theme_for(list_name)
    partner = rng.choice(brand.tenant.partners or ANY_PARTNERS)
    body = {"first_name": person.first, "last_name": person.last, "location": person.location,
            "interests": {"keywords": rng.sample(keywords, k=min(len(keywords), rng.randint(1, 3))),
                          "categories": list(categories)},
            "partner": partner, "list": list_name,
            "attribution": attribution(partner, list_name, rng)}
    if channel == "email" or rng.random() < 0.4:
        body["email"] = person.email
    if channel == "sms" or rng.random() < 0.3:
        body["phone"] = person.phone if channel == "sms" and kind == "invalid" \
            else display_phone(person.phone, brand.tenant.validation.default_region, rng)
    if channel == "sms" and kind != "no_consent":
        body["consent"] = consent(brand, now, rng, with_ip=True)
    elif channel == "email" and rng.random() < 0.3:
        body["consent"] = consent(brand, now, rng, with_ip=False)
    return body


def fresh_lead(brands: list[Brand], kind: str, order: int, run: str, now: datetime,
               rng: random.Random, phones: PhoneBook, emails: set[str]) -> Planned:
    brand = pick_brand(brands, kind, rng)
    channel = pick_channel(brand, kind, rng)
    person = make_person(brand, run, rng, phones, emails)
    apply_kind(person, kind, channel, rng)
    list_name = rng.choice(brand.lists_for(channel))
    return Planned(brand.id, lead_body(brand, person, channel, list_name, kind, now, rng), kind, order)


def resubmission(original: Planned, brand: Brand, total: int, rng: random.Random) -> Planned:
    """The same person again: maybe another list of the channel, another partner, another
    spelling of the same address; sent some time after the first one."""
    body = json.loads(json.dumps(original.body))
    channel = brand.tenant.lists[body["list"]].channel
    body["list"] = rng.choice(brand.lists_for(channel))
    body["partner"] = rng.choice(brand.tenant.partners or ANY_PARTNERS)
    body["attribution"] = attribution(body["partner"], body["list"], rng)
    if channel == "email":
        body["email"] = respell_email(body["email"], rng)
    elif "phone" in body:
        region = brand.tenant.validation.default_region
        body["phone"] = display_phone(identity_phone(body["phone"], region), region, rng)
    later = original.order + rng.uniform(1, max(2, total - original.order))
    return Planned(original.brand, body, "duplicate", later)


def respell_email(email: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        local, domain = email.split("@")
        return f"{local.title()}@{domain.upper()}"
    if roll < 0.55:
        return f"  {email} "
    return email


def generate_leads(brands: list[Brand], total: int, run: str, seed: int) -> list[Planned]:
    """`total` leads in submission order: first-timers with the planted problems, then the
    planted duplicates of clean ones, each placed after its original."""
    rng, now = random.Random(seed), datetime.now(timezone.utc)
    phones, emails = PhoneBook(seed, run), set()
    n_dups = round(total * DUPLICATE_SHARE)
    kinds = plan_kinds(total, total - n_dups, rng)
    fresh = [fresh_lead(brands, kind, i, run, now, rng, phones, emails) for i, kind in enumerate(kinds)]
    clean = [p for p in fresh if p.kind == "clean"]
    by_id = {b.id: b for b in brands}
    dups = [resubmission(p, by_id[p.brand], total, rng)
            for p in rng.choices(clean, k=n_dups)] if clean else []
    return sorted(fresh + dups, key=lambda p: p.order)


def batches(leads: list[Planned], size: int) -> list[tuple[str, list[dict]]]:
    """(brand, bodies) batches of at most `size`, in lead order, brands interleaved."""
    per_brand: dict[str, list[dict]] = defaultdict(list)
    for p in leads:
        per_brand[p.brand].append(p.body)
    chunked = {b: [bodies[i:i + size] for i in range(0, len(bodies), size)]
               for b, bodies in per_brand.items()}
    out = []
    for i in range(max(len(c) for c in chunked.values())):
        out += [(b, c[i]) for b, c in chunked.items() if i < len(c)]
    return out


# ---- submitting ---------------------------------------------------------------------------

async def check_api(settings: Settings) -> None:
    url = f"{settings.api_url}/healthz"
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            r = await client.get(url)
    except httpx.TransportError as exc:
        raise DemoError(f"the API at {settings.api_url} is unreachable ({exc.__class__.__name__}: "
                        f"{exc}). Start the stack with ./dev up; see ./dev status and ./dev logs api")
    if r.status_code != 200:
        raise DemoError(f"the API at {url} answered HTTP {r.status_code}: {r.text[:500]}")


async def post_batch(client: httpx.AsyncClient, url: str, key: str, idem: str, bodies: list[dict],
                     console: Console, label: str) -> list[dict] | None:
    """POST one batch; the API's per-lead ids, or None (after printing why) if not taken.
    The Idempotency-Key makes a retry after a lost answer safe: the intake skips repeats."""
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}
    for attempt in range(RETRIES_503 + 1):
        try:
            r = await client.post(url, json={"leads": bodies}, headers=headers)
        except httpx.ConnectError as exc:
            raise DemoError(f"lost the API at {url}: {exc}; see ./dev status and ./dev logs api")
        except httpx.TransportError as exc:
            r = None
            console.print(f"[yellow]{label}: {exc.__class__.__name__} ({exc}), retrying[/]")
        if r is not None and r.status_code == 202:
            return r.json()["leads"]
        if r is not None and r.status_code != 503:
            break
        if attempt < RETRIES_503:
            wait = 0.5 * 2 ** attempt
            console.print(f"[yellow]{label}: {'HTTP 503' if r is not None else 'no answer'}, "
                          f"retry {attempt + 1}/{RETRIES_503} in {wait:.1f}s[/]")
            await asyncio.sleep(wait)
    report_refused(r, console, label)
    return None


def report_refused(r: httpx.Response | None, console: Console, label: str) -> None:
    if r is None:
        console.print(f"[bold red]{label}: the API never answered; batch not submitted[/]")
        return
    console.print(f"[bold red]{label}: HTTP {r.status_code}, batch not submitted[/]")
    try:
        console.print_json(data=r.json())
    except ValueError:
        console.print(r.text[:2000], markup=False)


async def submit_all(settings: Settings, brands: list[Brand], todo: list[tuple[str, list[dict]]],
                     run_id: str, concurrency: int, progress: Progress) -> Submitted:
    keys = {b.id: b.key for b in brands}
    url = f"{settings.api_url}/v1/leads/batch"
    out, gate = Submitted(), asyncio.Semaphore(concurrency)
    task = progress.add_task("submitting", total=sum(len(b) for _, b in todo))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(n: int, brand: str, bodies: list[dict]) -> None:
            async with gate:
                taken = await post_batch(client, url, keys[brand], f"demo-{run_id}-{n}", bodies,
                                         progress.console, f"batch {n + 1} ({brand}, {len(bodies)} leads)")
            record(out, brand, bodies, taken)
            progress.advance(task, len(bodies))

        await asyncio.gather(*(one(n, brand, bodies) for n, (brand, bodies) in enumerate(todo)))
    return out


def record(out: Submitted, brand: str, bodies: list[dict], taken: list[dict] | None) -> None:
    if taken is None:
        out.failed_batches += 1
        out.failed_leads += len(bodies)
        return
    out.event_ids += [t["event_id"] for t in taken]
    out.lead_ids += [t["lead_id"] for t in taken]
    out.by_brand[brand] += len(taken)


# ---- reading ClickHouse -------------------------------------------------------------------

class RunQueries:
    """ClickHouse queries scoped to this run's submitted event ids."""

    def __init__(self, settings: Settings):
        self.client = connect(settings.clickhouse_host, settings.clickhouse_port)
        self.events = f"{settings.clickhouse_database}.events"
        self.params: dict = {"ids": (), "decided": DECIDED}

    def scope(self, event_ids: list[str]) -> None:
        self.params["ids"] = tuple(event_ids)

    def _run(self, sql: str) -> list[tuple]:
        return self.client.execute(sql.format(events=self.events), self.params,
                                   settings={"max_query_size": MAX_QUERY_SIZE})

    def counts(self) -> tuple[int, int]:
        """(submissions seen, decisions seen) for this run."""
        rows = self._run("SELECT countIf(event_type = 'lead.submitted'), "
                         "countIf(event_type IN %(decided)s) FROM {events} FINAL "
                         "WHERE (event_type = 'lead.submitted' AND event_id IN %(ids)s) "
                         "OR (event_type IN %(decided)s AND causation_id IN %(ids)s)")
        return rows[0]

    def submitted_by_brand(self) -> dict[str, int]:
        return dict(self._run("SELECT tenant, count() FROM {events} FINAL WHERE "
                              "event_type = 'lead.submitted' AND event_id IN %(ids)s GROUP BY tenant"))

    def decisions_by_brand(self) -> dict[tuple[str, str], int]:
        rows = self._run("SELECT tenant, event_type, count() FROM {events} FINAL WHERE "
                         "event_type IN %(decided)s AND causation_id IN %(ids)s "
                         "GROUP BY tenant, event_type")
        return {(t, e): n for t, e, n in rows}

    def reasons_by_brand(self) -> dict[tuple[str, str], int]:
        rows = self._run("SELECT tenant, arrayJoin(reasons) AS reason, count() FROM {events} FINAL "
                         "WHERE event_type = 'lead.rejected' AND causation_id IN %(ids)s "
                         "GROUP BY tenant, reason")
        return {(t, r): n for t, r, n in rows}

    def duplicate_outcomes(self) -> dict[str, int]:
        return dict(self._run("SELECT outcome, count() FROM {events} FINAL WHERE "
                              "event_type = 'lead.resubmitted' AND causation_id IN %(ids)s "
                              "GROUP BY outcome ORDER BY outcome"))

    def accepted_lead(self) -> tuple[str, str] | None:
        rows = self._run("SELECT tenant, lead_id FROM {events} FINAL WHERE "
                         "event_type = 'lead.accepted' AND causation_id IN %(ids)s "
                         "ORDER BY channel, event_id LIMIT 1")
        return rows[0] if rows else None


def open_queries(settings: Settings) -> RunQueries:
    """Connected to ClickHouse (checked before any lead is sent, so a run can be watched)."""
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)  # we say it ourselves
    q = RunQueries(settings)
    try:
        q.client.execute(f"SELECT count() FROM {q.events} WHERE 0")
    except Exception as exc:
        raise DemoError(f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port} "
                        f"is unreachable ({exc}); see ./dev status and ./dev logs clickhouse")
    return q


async def wait_for_decisions(q: RunQueries, expected: int, timeout: float,
                             progress: Progress) -> tuple[bool, int, int]:
    """Poll until every submission and its decision are in ClickHouse, or the timeout."""
    task = progress.add_task("deciding", total=expected)
    deadline = time.monotonic() + timeout
    while True:
        seen, decided = await asyncio.to_thread(q.counts)
        progress.update(task, completed=decided)
        if decided >= expected and seen >= expected:
            return True, seen, decided
        if time.monotonic() >= deadline:
            return False, seen, decided
        await asyncio.sleep(POLL_SECONDS)


# ---- reporting ----------------------------------------------------------------------------

@dataclass
class Summary:
    """This run's counts per brand, as ClickHouse has them."""

    names: dict[str, str]  # brand id -> name
    rows: dict[str, list[int]]  # brand id -> submitted, accepted, rejected, duplicates
    reasons: dict[str, Counter]  # brand id -> rejected leads per reason
    outcomes: dict[str, int]  # lead.resubmitted outcome -> count

    @property
    def reason_names(self) -> list[str]:
        return sorted({r for c in self.reasons.values() for r in c})

    def totals(self) -> tuple[list[int], Counter]:
        rows = list(self.rows.values())
        return [sum(col) for col in zip(*rows)], sum(self.reasons.values(), Counter())


def read_summary(brands: list[Brand], q: RunQueries) -> Summary:
    submitted, decisions, reasons = q.submitted_by_brand(), q.decisions_by_brand(), q.reasons_by_brand()
    rows = {b.id: [submitted.get(b.id, 0), *(decisions.get((b.id, e), 0) for e in DECIDED)]
            for b in brands}
    per_reason = {b.id: Counter({r: n for (t, r), n in reasons.items() if t == b.id}) for b in brands}
    return Summary({b.id: b.tenant.name for b in brands}, rows, per_reason, q.duplicate_outcomes())


def adds_up(summary: Summary, sub: Submitted) -> bool:
    """For every brand: taken by the API = submitted = accepted + rejected + duplicates."""
    return all(sub.by_brand[b] == row[0] == sum(row[1:]) for b, row in summary.rows.items())


def brand_table(summary: Summary, title: str, reasons: list[str]) -> Table:
    """One row per brand and a totals row, with a column per rejection reason given."""
    table = Table(title=title)
    table.add_column("brand", no_wrap=True)
    for col in ("submitted", "accepted", "rejected", "duplicates"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in reasons:
        table.add_column(r.replace("_", "\n"), justify="right", style="dim")
    for b, row in summary.rows.items():
        table.add_row(summary.names[b], *(f"{v:,}" for v in row),
                      *(f"{summary.reasons[b][r]:,}" for r in reasons))
    total, total_reasons = summary.totals()
    table.add_section()
    table.add_row("total", *(f"{v:,}" for v in total), *(f"{total_reasons[r]:,}" for r in reasons),
                  style="bold")
    return table


def reason_table(summary: Summary) -> Table:
    """Rejected leads per reason (rows) and brand (columns), for narrow terminals."""
    table = Table(title="rejected leads by reason")
    table.add_column("reason", no_wrap=True)
    for b in summary.rows:
        table.add_column(summary.names[b], justify="right")
    table.add_column("total", justify="right", style="bold")
    _, totals = summary.totals()
    for r in summary.reason_names:
        table.add_row(r, *(f"{summary.reasons[b][r]:,}" for b in summary.rows), f"{totals[r]:,}")
    return table


def print_tables(console: Console, summary: Summary, title: str) -> None:
    """The brand table with a column per reason if it fits the terminal, else two tables."""
    wide = brand_table(summary, title, summary.reason_names)
    natural = console.measure(wide, options=console.options.update(max_width=10_000)).maximum
    if natural <= console.width:
        console.print(wide)
        console.print("  reason columns count rejected leads per reason; a lead can have several")
        return
    console.print(brand_table(summary, title, []))
    if summary.reason_names:
        console.print(reason_table(summary))
        console.print("  a rejected lead can have several reasons")


def print_summary(console: Console, brands: list[Brand], q: RunQueries, sub: Submitted,
                  complete: bool) -> bool:
    """The tables and whether the counts add up (False while decisions are missing)."""
    title = "this run, read back from ClickHouse" + ("" if complete else " (so far: not all decided)")
    summary = read_summary(brands, q)
    console.print()
    print_tables(console, summary, title)
    if summary.outcomes:
        console.print("  duplicates: " + ", ".join(f"{n:,} {o}" for o, n in summary.outcomes.items()))
    if not complete:
        return False
    ok = adds_up(summary, sub)
    if ok:
        console.print("  [green]for every brand: taken by the API = submitted = accepted + rejected "
                      "+ duplicates[/]")
    else:
        console.print("  [bold red]counts do not add up (taken by the API = submitted = accepted + rejected "
                      "+ duplicates): see the rows above[/]")
    return ok


def print_throughput(console: Console, n: int, people: int, submit_s: float,
                     decided_s: float | None) -> None:
    console.print(f"\n  submitted {n:,} leads ({people:,} distinct lead ids) in {submit_s:.1f}s "
                  f"({n / max(submit_s, 1e-6):,.0f} leads/s)")
    if decided_s is not None:
        console.print(f"  all decided and in ClickHouse {decided_s:.1f}s after the first request")


def print_explore(console: Console, settings: Settings, brands: list[Brand], q: RunQueries) -> None:
    db, keys = settings.clickhouse_database, {b.id: b.key for b in brands}
    console.print("\n[bold]explore[/]")
    console.print('  eval "$(./dev env)"          # endpoints and demo keys as LEADSTREAM_* variables')
    console.print(f"  clickhouse-client --port {settings.clickhouse_port} -q \"SELECT tenant, "
                  f"sum(submitted), sum(accepted), sum(rejected), sum(duplicates) FROM {db}.lead_funnel "
                  f"WHERE day = today() GROUP BY tenant ORDER BY tenant\"", markup=False, soft_wrap=True)
    console.print(f"  clickhouse-client --port {settings.clickhouse_port} -q \"SELECT arrayJoin(reasons) "
                  f"AS reason, count() FROM {db}.events FINAL WHERE event_type = 'lead.rejected' "
                  f"GROUP BY reason ORDER BY count() DESC\"", markup=False, soft_wrap=True)
    sample = q.accepted_lead()
    if sample:
        tenant, lead_id = sample
        console.print(f"  curl -s -H 'Authorization: Bearer {keys[tenant]}' "
                      f"{settings.api_url}/v1/leads/{lead_id}", markup=False, soft_wrap=True)
    print_dashboard(console, settings)
    console.print("  the stack is still running: ./dev status, ./dev logs NAME; ./dev down to stop it")


def print_dashboard(console: Console, settings: Settings) -> None:
    """The dashboard's address and one sign-in per demo role."""
    from stack.demo_logins import demo_logins
    console.print(f"\n[bold]dashboard[/]  {settings.api_url}/app/   (sign in as any of these)")
    for role, email, password in demo_logins(settings.tenants_file):
        console.print(f"  {role:<15} {email:<32} {password}")


# ---- main ---------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="./dev demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--leads", type=int, default=6000, help="how many leads to send (default 6000)")
    p.add_argument("--seed", type=int, default=20240611, help="seed of the lead mix")
    p.add_argument("--run-id", default=None, help="put into every address (default: random)")
    p.add_argument("--batch-size", type=int, default=500, help="leads per request (default 500)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for decisions")
    p.add_argument("--no-morning", action="store_true", help="skip the morning of daily alerts")
    args = p.parse_args(argv)
    if args.leads < 1 or args.batch_size < 1 or args.concurrency < 1:
        p.error("--leads, --batch-size and --concurrency must be positive")
    return args


def new_run_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))


def make_console() -> Console:
    """The terminal's width; 160 columns when writing to a file or pipe (unless COLUMNS says)."""
    return Console() if sys.stdout.isatty() or "COLUMNS" in os.environ else Console(width=160)


async def run(args: argparse.Namespace, console: Console) -> int:
    settings = get_settings()
    brands = demo_brands(settings)
    run_id = args.run_id or new_run_id()
    leads = generate_leads(brands, args.leads, run_id, args.seed)
    todo = batches(leads, min(args.batch_size, settings.max_batch_leads))
    print_intro(console, settings, brands, run_id, leads, len(todo))
    await check_api(settings)
    q = open_queries(settings)
    with Progress(TextColumn("  {task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                  TaskProgressColumn(), TimeElapsedColumn(), console=console) as progress:
        t0 = time.monotonic()
        sub = await submit_all(settings, brands, todo, run_id, args.concurrency, progress)
        submit_s = time.monotonic() - t0
        if not sub.event_ids:
            raise DemoError("the API took none of the batches (see the errors above)")
        q.scope(sub.event_ids)
        done, seen, decided = await wait_for_decisions(q, len(sub.event_ids), args.timeout, progress)
        decided_s = time.monotonic() - t0 if done else None
    print_throughput(console, len(sub.event_ids), len(set(sub.lead_ids)), submit_s, decided_s)
    if sub.failed_batches:
        console.print(f"  [bold red]{sub.failed_batches} batches ({sub.failed_leads:,} leads) "
                      f"were refused by the API (errors above)[/]")
    consistent = print_summary(console, brands, q, sub, complete=done)
    from stack.control_plane_demo import run_control_plane
    control_ok = await run_control_plane(settings, console, next(b.key for b in brands if b.id == "jobsnearby"))
    from stack.triggers_demo import run_triggers
    control_ok = await run_triggers(settings, console, set(sub.lead_ids),
                                    next(b.key for b in brands if b.id == "hireflow")) and control_ok
    from stack.digests_demo import run_digests
    control_ok = await run_digests(settings, console, set(sub.lead_ids),
                                   next(b.key for b in brands if b.id == "jobsnearby"), run_id) and control_ok
    from stack.consent_demo import run_consent
    control_ok = await run_consent(settings, console, set(sub.lead_ids),
                                   next(b.key for b in brands if b.id == "jobsnearby")) and control_ok
    from stack.crm_demo import run_crm
    control_ok = await run_crm(settings, console, run_id) and control_ok
    morning_ok = True
    if not args.no_morning:
        from stack.engagement_demo import run_afternoon
        from stack.experiments_demo import report_experiment, start_experiment
        from stack.morning import run_morning
        from stack.recommendations_demo import report_recommendations, start_recommendations
        experiment = await start_experiment(settings, console, run_id)
        await start_recommendations(settings, console)
        morning_started = time.time()
        morning_ok = await run_morning(settings, console, set(sub.lead_ids))
        if morning_ok:
            morning_ok = await run_afternoon(settings, console, set(sub.lead_ids), morning_started)
        if morning_ok:
            morning_ok = await report_experiment(settings, console, experiment)
        if morning_ok:
            morning_ok = await report_recommendations(settings, console, morning_started)
        if morning_ok:
            from stack.accounting_demo import run_accounting
            morning_ok = await run_accounting(settings, console)
    print_explore(console, settings, brands, q)
    if not done:
        print_timeout(console, args.timeout, len(sub.event_ids), seen, decided)
    return 0 if done and consistent and control_ok and morning_ok and not sub.failed_batches else 1


def print_intro(console: Console, settings: Settings, brands: list[Brand], run_id: str,
                leads: list[Planned], n_batches: int) -> None:
    planned = Counter(p.kind for p in leads)
    console.print(f"[bold]leadstream demo[/] run [cyan]{run_id}[/]: {len(leads):,} leads for "
                  f"{', '.join(b.tenant.name for b in brands)} in {n_batches} batches -> {settings.api_url}")
    console.print("  planted: " + ", ".join(f"{planned[k]:,} {k}" for k in ("clean", "duplicate", *SHARES)
                                            if planned[k]))


def print_timeout(console: Console, timeout: float, expected: int, seen: int, decided: int) -> None:
    console.print(f"\n[bold red]decisions did not all arrive within {timeout:g}s:[/] {decided:,} of "
                  f"{expected:,} decided, {seen:,} of the submissions in ClickHouse. Check ./dev status, "
                  f"./dev scale, ./dev logs worker-intake-0 and ./dev logs worker-analytics-0.")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = make_console()
    try:
        return asyncio.run(run(args, console))
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; the stack is still running[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
