"""The content gate: every email template of every brand, rendered with realistic data, scored
by SpamAssassin (Debian's package, local rules only: no network tests, no Bayes).

    python -m stack.spam_gate        a table: brand, template, score, the rules that fired

The messages are composed by the real composer (domain.compose) from the brand's live
templates, with jobs like the partners' feeds send, links on an https tracking domain of the
brand (as in production), and DKIM-signed with the brand's keys; the score is what a receiver
running SpamAssassin would see before any network reputation. The test suite fails when a
message scores 1.0 or more, or when a rule fires that is not in the accepted list below.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

from channels.base import EmailMessage
from channels.dkim import DkimSigner, KeyLoader
from channels.smtp_pool import mime_bytes
from domain.compose import (
    EmailContext, ListFacts, Recipient, TenantBrand, compose_email, email_codes_needed, list_title, schedule_phrase,
)
from domain.creatives import Creative
from domain.jobs import Job
from domain.links import signed_code
from domain.tenants import TenantBook
from projections.templates import TemplateStore
from stack.standins.job_feed import generate_jobs
from streams.settings import Settings

MAX_SCORE = 1.0
# Rules that may fire on a good message, and why they are fine. Anything else firing is a
# regression the test names.
ACCEPTED_RULES = {
    "HTML_MESSAGE": "0.0, informational: the message has an HTML part (every alert has one)",
    "NO_RECEIVED": "-0.0, informational: rendered here, not yet relayed (a delivered copy has Received headers)",
    "NO_RELAYS": "-0.0, informational: same",
}
NOW_MS = 1_796_000_000_000  # a fixed instant, so the gate renders the same messages every run


@dataclass(frozen=True)
class Scored:
    """One rendered message and what SpamAssassin made of it."""

    tenant: str
    template: str
    score: float
    rules: tuple[str, ...]


def realistic_jobs(tenant: str, n: int) -> list[Job]:
    """Jobs as the job-feed stand-in serves them (titles, employers, cities, pay per click)."""
    out = []
    for d in generate_jobs(7, tenant, "gate", n, NOW_MS):
        cpc = d["cpc"].split(".")
        out.append(Job(tenant=tenant, job_id=d["id"], source="gate", title=d["title"], company=d["company"],
                       url=d["url"], city=d["city"], state=d["state"], zip=d["zip"], lat=d["lat"], lon=d["lon"],
                       description=d["description"], category=d["category"], posted_at_ms=d["posted_at_ms"],
                       cpc_cents=int(cpc[0]) * 100 + int(cpc[1])))
    return out


WELCOME = "welcome"  # the welcome template id (the sender's WELCOME_TEMPLATE)


def email_templates(book: TenantBook) -> list[tuple[str, str, str]]:
    """(tenant, list, template id) of every email list of every brand: its alert, and its
    welcome when it sends one."""
    out = []
    for tid, tenant in sorted(book.tenants.items()):
        for name, lst in sorted(tenant.lists.items()):
            if lst.channel == "email":
                out.append((tid, name, tenant.template_of(name)))
                if lst.welcome:
                    out.append((tid, name, WELCOME))
    return out


def render(s: Settings, book: TenantBook, tenant_id: str, list_name: str, template: str,
           store: TemplateStore, signer: DkimSigner) -> bytes:
    """One signed message of `template`, to a realistic recipient, as the sender would send it."""
    tenant = book.tenants[tenant_id]
    brand = TenantBrand(tenant.id, tenant.name, tenant.brand.postal_address, tenant.brand.from_name or tenant.name,
                        tenant.brand.from_address, tenant.brand.unsubscribe_mailto, tenant.brand.sms_max_segments)
    lst = tenant.lists[list_name]
    welcome = template == WELCOME
    jobs = realistic_jobs(tenant_id, 3 if welcome else lst.jobs_per_message)
    creatives = [Creative(**c.model_dump()) for c in lst.creatives]
    key = s.link_key_ring[0]
    codes = [signed_code(1_000_000 + i, key) for i in range(email_codes_needed(len(jobs), bool(creatives)) + 4)]
    domain = tenant.brand.from_address.rpartition("@")[2]
    ctx = EmailContext(brand, Recipient("lead-gate", "maria.gonzalez@example.com", "Maria", "Austin"), list_name,
                       f"gate-{tenant_id}-{list_name}", store.email(tenant_id, template), jobs, codes,
                       f"https://links.{domain}", NOW_MS, creatives=creatives,
                       campaign="welcome" if welcome else "daily",
                       new_job_keys=frozenset() if welcome else frozenset(j.key for j in jobs[:3]),
                       list_facts=ListFacts(list_title(list_name, lst.title),
                                            schedule_phrase(lst.send_time, lst.cadence), "email") if welcome else None)
    composed = compose_email(ctx)
    message = EmailMessage(ctx.send_id, brand.from_address, brand.from_name, ctx.lead.address, composed.subject,
                           composed.html, composed.text, composed.headers)
    return signer.sign(mime_bytes(message, domain, NOW_MS / 1000)[0])


def spam_status(raw: bytes) -> tuple[float, tuple[str, ...]]:
    """SpamAssassin's score and fired rules (informational ones too) for one message, from its
    report (-t); local tests only (-L), no Bayes."""
    done = subprocess.run(["spamassassin", "-L", "-t", "--cf=use_bayes 0"], input=raw, capture_output=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"spamassassin failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    out = done.stdout.decode("utf-8", "replace")
    at = out.rfind("Content analysis details:")
    m = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", out[at:]) if at >= 0 else None
    if not m:
        raise RuntimeError("spamassassin answered without its report")
    rules = tuple(re.findall(r"(?m)^\s*-?\d+\.\d+\s+([A-Z0-9_]+)\s", out[at:]))
    return float(m.group(1)), rules


def score_all(s: Settings, book: TenantBook) -> list[Scored]:
    """Every brand's every email template, rendered and scored."""
    store = TemplateStore()
    signer = DkimSigner(lambda: book, KeyLoader(s.secrets_dir))
    out = []
    for tenant_id, list_name, template in email_templates(book):
        raw = render(s, book, tenant_id, list_name, template, store, signer)
        score, rules = spam_status(raw)
        out.append(Scored(tenant_id, f"{list_name}/{template}" if template == WELCOME else template, score, rules))
    return out


def main() -> int:
    from streams.settings import get_settings, load_tenants
    s = get_settings()
    results = score_all(s, load_tenants(s.tenants_file))
    for r in results:
        print(f"{r.tenant:<12} {r.template:<20} {r.score:5.1f}  {' '.join(r.rules)}")
    bad = [r for r in results if r.score >= MAX_SCORE]
    print(f"{len(results)} templates scored, {len(bad)} at or above {MAX_SCORE}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
