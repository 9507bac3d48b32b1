"""A sent message composed again, as the person got it, from what its events recorded: the
request (template, merge context), the dispatch (its jobs in order, the instant it was
composed, the creative) and the lead's read model; the same composer the sender uses
(services/sending/content.py). Nothing is sent and nothing is stored.

What is not recorded is said in `notes`: jobs that expired since are left out, a template
edited since renders in its new version, and the tracked links carry inert codes (numbers at
the top of the link counter's range, which it never reaches, tagged with no real key: the
tracking front refuses them unread), so opening a preview never counts as the person's open
or click.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Protocol

from domain.intake import LeadState
from domain.jobs import Job
from domain.sending import TEMPLATE, content_of
from domain.tenants import TenantBook
from domain.experiments import arm_named
from services.sending.content import Draft, codes_needed, compose
from services.sending.ports import Segments, SendPolicy, Templates

INERT_CODE_BASE = 2 ** 64 - 2 ** 20  # the counter's last million numbers: never handed out
INERT_LINK_KEY = b"inert-preview"  # not a real link key: the codes' tags do not verify


class JobsByKey(Protocol):
    """The tenant's jobs by key (None where one is gone)."""

    async def get_many(self, tenant: str, keys: list[str]) -> list[Job | None]: ...


class LeadReader(Protocol):
    async def get(self, tenant: str, lead_id: str) -> LeadState | None: ...


@dataclass(frozen=True)
class RecomposePorts:
    """What composing again needs: the configuration, the lead, jobs, templates, segments."""

    book: Callable[[], TenantBook]  # the configuration as it is now
    leads: LeadReader
    jobs: JobsByKey
    templates: Templates
    segments: Segments | None
    tracking_base_url: str


@dataclass
class Recomposed:
    """The message (None when it cannot be composed again) and what differs from the original."""

    channel: str
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    sender: str | None = None
    to: str | None = None
    template_version: str | None = None
    notes: list[str] = field(default_factory=list)
    composed: bool = False


async def recompose(ports: RecomposePorts, request: dict, dispatched: dict) -> Recomposed:
    """The message of this send.requested as its send.dispatched says it was composed."""
    out = Recomposed(request["channel"])
    tenant = ports.book().tenants.get(request["tenant"])
    state = await ports.leads.get(request["tenant"], request["lead_id"])
    if tenant is None or state is None:
        out.notes.append("cannot compose it again: the " + ("tenant" if tenant is None else "lead's read model")
                         + " is gone")
        return out
    jobs = await _jobs(ports, request, dispatched, out)
    segments = await _segments(ports, request)
    new_keys = frozenset(j.key for j in jobs) if request["kind"] == "daily" else frozenset()  # an alert: only new
    arm = arm_named(tenant.experiments, dispatched.get("experiment") or "", dispatched.get("variant") or "")
    draft = Draft(request, tenant, state, jobs, new_keys, segments, arm)
    numbers = [INERT_CODE_BASE + i for i in range(codes_needed(draft))]
    policy = SendPolicy(lease_ms=0, provider_rate_per_s=0, link_key=INERT_LINK_KEY,
                        tracking_base_url=ports.tracking_base_url)
    try:
        composed, message = compose(draft, numbers, _ms(dispatched["occurred_at"]), ports.templates, policy)
    except Exception as exc:  # a template deleted or broken since: say so, show the events anyway
        out.notes.append(f"cannot compose it again: {exc}")
        return out
    _fill(out, composed, message, state.address)
    _compare(out, composed, dispatched)
    return out


async def _jobs(ports: RecomposePorts, request: dict, dispatched: dict, out: Recomposed) -> list[Job]:
    keys = list(dispatched.get("job_keys") or [])
    found = await ports.jobs.get_many(request["tenant"], keys)
    gone = [k for k, job in zip(keys, found) if job is None]
    if gone:
        out.notes.append(f"{len(gone)} of its {len(keys)} jobs expired since and are left out: {', '.join(gone)}")
    return [job for job in found if job is not None]


async def _segments(ports: RecomposePorts, request: dict) -> list[str]:
    if ports.segments is None or content_of(request) != TEMPLATE:
        return []
    return (await ports.segments.of_leads([(request["tenant"], request["lead_id"])]))[0]


def _fill(out: Recomposed, composed, message, address: str) -> None:
    out.composed, out.to, out.template_version = True, address, composed.template_version
    if out.channel == "sms":
        out.text, out.sender = composed.body, getattr(message, "from_number", None)
        return
    out.subject, out.html, out.text = composed.subject, composed.html, composed.text
    out.sender = composed.headers.get("From")


def _compare(out: Recomposed, composed, dispatched: dict) -> None:
    sent_version = dispatched.get("template_version")
    if sent_version and sent_version != composed.template_version:
        out.notes.append(f"its template changed since: sent with version {sent_version}, shown with "
                         f"{composed.template_version}")
    creative = getattr(getattr(composed, "creative", None), "id", None)
    if (dispatched.get("creative") or None) != creative:
        out.notes.append(f"it carried the ad {dispatched.get('creative') or 'none'}; the list now picks "
                         f"{creative or 'none'}")
    if composed.links:
        out.notes.append("its tracked links carry inert codes here: following them counts nothing")


def _ms(value) -> int:
    """An event time from the stored payload: ISO 8601 text or ms."""
    if isinstance(value, (int, float)):
        return int(value)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
