"""What one request composes: the answer to an SMS reply, a job alert or welcome, or a named
template with its context (a trigger's message). Pure composition lives in domain/compose.py;
this module gathers its inputs (brand, recipient, template, jobs, codes, merge data)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import orjson

from domain.compose import (EmailContext, ListFacts, Recipient, SmsContext, TenantBrand, compose_email,
                            compose_reply, compose_sms, digest_items_of, email_codes_needed, list_title, schedule_phrase,
                            sms_codes_needed)
from domain.creatives import Creative
from domain.experiments import Arm
from domain.links import signed_code
from domain.messages import EmailMessage, SmsMessage
from domain.triggers import attributes_of
from domain.sending import REPLY, TEMPLATE, WELCOME, content_of, reply_text, template_id
from services.sending.ports import SendPolicy, Templates


@dataclass
class Draft:
    """What composing needs of one request, gathered by the batch."""

    req: dict
    tenant: object
    state: object
    jobs: list = field(default_factory=list)
    new_keys: frozenset = frozenset()
    segments: list[str] = field(default_factory=list)
    arm: Arm | None = None  # an experiment's variant: its subject, template or creative instead
    recommended: list = field(default_factory=list)  # (job, why) for the recommendations block


def codes_needed(d: Draft) -> int:
    """How many tracked-link codes the message takes."""
    content = content_of(d.req)
    if content == REPLY:
        return 0
    if d.req["channel"] == "sms":
        return sms_codes_needed(len(d.jobs))
    cfg = d.tenant.lists.get(d.req["list"])
    creatives = bool(cfg and cfg.creatives) and content != TEMPLATE  # a template message carries no ad
    items = len(digest_items_of(_context(d.req))) if content == TEMPLATE else 0
    return email_codes_needed(len(d.jobs), creatives, len(d.recommended), items)


def _context(req: dict) -> dict:
    return orjson.loads(req["context"]) if req.get("context") else {}


def compose(d: Draft, numbers: list[int], now_ms: int, templates: Templates, policy: SendPolicy):
    """(the composed message, the message for the provider) of one request."""
    req, tenant, state = d.req, d.tenant, d.state
    content = content_of(req)
    if content == REPLY:
        text = reply_text(req, tenant.name, tenant.engagement.help_contact)
        composed = compose_reply(req["send_id"], state.address, text, tenant.brand.sms_max_segments)
        return composed, SmsMessage(req["send_id"], tenant.brand.sms_from, state.address, composed.body)
    codes = [signed_code(n, policy.link_key) for n in numbers]
    brand = TenantBrand(tenant.id, tenant.name, tenant.brand.postal_address,
                        tenant.brand.from_name or tenant.name, tenant.brand.from_address,
                        tenant.brand.unsubscribe_mailto, tenant.brand.sms_max_segments)
    who = Recipient(state.lead_id, state.address, state.first_name or "", "")
    cfg = tenant.lists.get(req["list"])
    arm = d.arm
    template = (arm and arm.template) or template_id(req, tenant.template_of(req["list"]))
    facts = _list_facts(req["list"], cfg) if content == WELCOME and cfg else None
    extra = merge_data(req, state, d.segments)  # dynamic blocks on attributes and segments, in every template
    campaign = (req.get("trigger") or req["kind"]) if content == TEMPLATE else req["kind"]
    if req["channel"] == "sms":
        composed = compose_sms(SmsContext(brand, who, req["list"], req["send_id"], templates.sms(tenant.id, template),
                                          d.jobs, codes, policy.tracking_base_url, now_ms, campaign=campaign,
                                          partner=req.get("partner", ""),
                                          max_segments=cfg.sms_segments if cfg else None,
                                          new_job_keys=d.new_keys, list_facts=facts, extra=extra))
        return composed, SmsMessage(req["send_id"], tenant.brand.sms_from, state.address, composed.body)
    creatives = [] if content == TEMPLATE else [Creative(**c.model_dump()) for c in (cfg.creatives if cfg else [])]
    if arm and arm.creative:
        creatives = [replace(c, weight=1) for c in creatives if c.id == arm.creative]  # even a paused one
    compiled = templates.email(tenant.id, template)
    if arm and arm.subject:
        compiled = templates.with_subject(compiled, arm.subject)
    composed = compose_email(EmailContext(brand, who, req["list"], req["send_id"], compiled, d.jobs, codes,
                                          policy.tracking_base_url, now_ms, creatives=creatives, campaign=campaign,
                                          partner=req.get("partner", ""), new_job_keys=d.new_keys,
                                          list_facts=facts, extra=extra, recommended=d.recommended))
    message = EmailMessage(req["send_id"], brand.from_address, brand.from_name, state.address,
                           composed.subject, composed.html, composed.text, composed.headers,
                           {"send_id": req["send_id"], "tenant": tenant.id, "lead_id": state.lead_id,
                            "list": req["list"]})
    return composed, message


def merge_data(req: dict, state, segments: list[str]) -> dict:
    """A message's merge data: the request's context (a trigger's message: the triggering
    event's properties, the trigger; a digest's items), the lead's attributes (never the address), their segments
    (what dynamic blocks test: `{% if "nurses" in segments %}`, `{% if attributes.region == "CA" %}`)."""
    context = _context(req)
    return {"event": context.get("event") or {}, "trigger": context.get("trigger") or req.get("trigger") or "",
            "attributes": attributes_of(state), "segments": list(segments),
            "digest": context.get("digest") or {"items": [], "count": 0}}


def template_label(req: dict) -> str:
    """The template named in send.dispatched: tenant/list for alerts, tenant/template otherwise."""
    if content_of(req) == TEMPLATE:
        return f"{req['tenant']}/{req['template']}"
    return f"{req['tenant']}/{req['list']}"


def _list_facts(name: str, cfg) -> ListFacts:
    """What a welcome says about the list joined: its title and when it sends."""
    return ListFacts(list_title(name, cfg.title), schedule_phrase(cfg.send_time, cfg.cadence), cfg.channel)
