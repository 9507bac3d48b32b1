"""Configuration entities: what the control plane holds, how each is named and checked.

Every piece of configuration is an entity with a kind, an id and (for most kinds) the tenant
it belongs to; its key `kind:tenant/id` (or `kind:id` for platform-wide ones) keys it on the
compacted configuration topic. Checking an entity's data gives problems as (field path,
sentence), the path written as the tenant file writes it (`lists.daily-jobs.send_time`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.api_keys import ApiKey, key_id_for, key_problems
from domain.digests import DigestConfig
from domain.experiments import ExperimentConfig
from domain.people import Grant, Person
from domain.conversions import ConversionPolicy
from domain.triggers import SegmentConfig, TriggerConfig, TriggerPolicy
from domain.tenants import (AnalyticsPolicy, Blocklist, Brand, Channel, CrmSettings, DedupePolicy, Engagement, FeedConfig,
                            ListConfig, PartnerInfo, Revenue, Sending, TemplateMeta, ValidationPolicy, Webhook)

KINDS = ("platform", "tenant", "partner", "list", "template", "webhook", "feed", "api_key", "person", "grant",
         "trigger", "segment", "experiment", "digest")
TENANT_SCOPED = frozenset({"partner", "list", "template", "webhook", "feed", "grant", "api_key", "trigger", "segment",
                           "experiment", "digest"})
PLATFORM_ONLY = frozenset({"platform", "tenant", "person"})  # keyed without a tenant
# what the sending adapters know (channels/registry.py builds exactly these)
KNOWN_PROVIDERS: dict[str, tuple[str, ...]] = {
    "email": ("smtp", "sendgrid", "ses", "mailgun", "postmark"),
    "sms": ("twilio", "esendex", "vonage", "plivo", "telnyx"),
}
PLATFORM_ID = "settings"
PLATFORM_SCOPE = "*"  # in keys of kinds that are usually a tenant's: the platform's own (admin keys and grants)
WEBHOOK_ID = "default"  # a brand has one webhook endpoint (with its failover)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlatformSettings(_Data):
    """Platform-wide settings: the global blocklist."""

    blocklist: Blocklist = Blocklist()


class TenantSettings(_Data):
    """A brand's own settings; its lists, partners, feeds, keys... are entities of their own."""

    name: str = Field(min_length=1, max_length=200)
    channels: list[Channel] = Field(default_factory=lambda: ["email", "sms"])
    validation: ValidationPolicy = ValidationPolicy()
    dedupe: DedupePolicy = DedupePolicy()
    daily_caps: dict[Channel, int] = Field(default_factory=lambda: {"email": 1, "sms": 1})
    brand: Brand = Brand()
    sending: Sending = Sending()
    engagement: Engagement = Engagement()
    revenue: Revenue = Revenue()
    analytics: AnalyticsPolicy = AnalyticsPolicy()
    triggering: TriggerPolicy = TriggerPolicy()
    conversions: ConversionPolicy = ConversionPolicy()
    crm: CrmSettings | None = None


MODELS: dict[str, type[BaseModel]] = {
    "platform": PlatformSettings, "tenant": TenantSettings, "partner": PartnerInfo, "list": ListConfig,
    "template": TemplateMeta, "webhook": Webhook, "feed": FeedConfig, "api_key": ApiKey,
    "person": Person, "grant": Grant, "trigger": TriggerConfig, "segment": SegmentConfig,
    "experiment": ExperimentConfig, "digest": DigestConfig,
}
# where an entity sits in the tenant file, for the paths of problems
_PATH = {"platform": "platform", "tenant": "tenants.{id}", "partner": "partners.{id}", "list": "lists.{id}",
         "template": "templates.{id}", "webhook": "webhook", "feed": "feeds.{id}", "api_key": "api_keys.{id}",
         "person": "people.{id}", "grant": "grants.{id}", "trigger": "triggers.{id}", "segment": "segments.{id}",
         "experiment": "experiments.{id}", "digest": "digests.{id}"}


@dataclass(frozen=True)
class Ref:
    """Which entity: its kind, its tenant (None for platform-wide ones) and its id."""

    kind: str
    tenant: str | None
    id: str

    @property
    def key(self) -> str:
        if self.kind in PLATFORM_ONLY:
            return f"{self.kind}:{self.id}"
        return f"{self.kind}:{self.tenant or PLATFORM_SCOPE}/{self.id}"

    @property
    def path(self) -> str:
        return _PATH[self.kind].format(id=self.id)

    def __str__(self) -> str:
        return self.key


def parse_key(key: str) -> Ref:
    """The Ref of an entity key; ValueError when it is not one."""
    kind, sep, rest = key.partition(":")
    if not sep or kind not in KINDS or not rest:
        raise ValueError(f"{key!r} is not an entity key (kind:tenant/id or kind:id)")
    if kind in PLATFORM_ONLY:
        return Ref(kind, None, rest)
    tenant, slash, ident = rest.partition("/")
    if not slash or not ident:
        raise ValueError(f"{key!r}: a {kind} key is {kind}:TENANT/ID")
    if tenant == PLATFORM_SCOPE and kind in ("api_key", "grant"):
        return Ref(kind, None, ident)  # a platform key or a platform_admin grant
    return Ref(kind, tenant, ident)


Problem = tuple[str, str]  # (field path, what is wrong)


def id_problem(kind: str, ident: str) -> str | None:
    """Why an id cannot name an entity of this kind, or None."""
    if kind in ("tenant", "partner", "list", "template", "feed", "trigger", "segment", "experiment", "digest"):
        if not _ID.match(ident):
            return (f"{ident!r} is not a valid {kind} id: lower-case letters, digits, '-' and '_', "
                    f"at most 64, starting with a letter or digit")
    return None


def check_entity(ref: Ref, data: Any) -> tuple[BaseModel | None, list[Problem]]:
    """The entity's data as its model, or the problems with it (paths from the entity's place)."""
    problems: list[Problem] = []
    bad_id = id_problem(ref.kind, ref.id) if ref.kind != "grant" else None
    if bad_id:
        problems.append((ref.path, bad_id))
    if ref.tenant is not None:
        bad_tenant = id_problem("tenant", ref.tenant)
        if bad_tenant:
            problems.append(("tenant", bad_tenant))
    if not isinstance(data, dict):
        return None, problems + [(ref.path, "must be an object (a mapping of fields)")]
    try:
        model = MODELS[ref.kind].model_validate(data)
    except ValidationError as exc:
        return None, problems + pydantic_problems(exc, ref.path)
    problems += _identity_problems(ref, model)
    return (None if problems else model), problems


def _identity_problems(ref: Ref, model: BaseModel) -> list[Problem]:
    """The data must agree with the key it is filed under."""
    out: list[Problem] = []
    p = ref.path
    if isinstance(model, FeedConfig) and model.name != ref.id:
        out.append((f"{p}.name", f"is {model.name!r} but the feed is filed as {ref.id!r}"))
    elif isinstance(model, Person) and model.email != ref.id:
        out.append((f"{p}.email", f"is {model.email!r} but the person is filed as {ref.id!r}"))
    elif isinstance(model, ApiKey):
        if key_id_for(model.sha256) != ref.id:
            out.append((f"{p}.sha256", f"does not hash to the key id {ref.id!r}"))
        if model.tenant != ref.tenant:
            out.append((f"{p}.tenant", f"is {model.tenant!r} but the key is filed under {ref.tenant!r}"))
        out += [(f"{p}.{f}", msg) for f, msg in key_problems(model)]
    elif isinstance(model, Grant):
        if model.tenant != ref.tenant or model.id != ref.id:
            out.append((p, f"grant {model.id!r} of tenant {model.tenant!r} is filed as {ref.key!r}"))
    return out


def pydantic_problems(exc: ValidationError, prefix: str) -> list[Problem]:
    """Each pydantic error as (dotted path under prefix, plain sentence)."""
    out = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if not str(x).startswith("function-")]
        path = ".".join([prefix] + loc) if prefix else ".".join(loc)
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field: remove it"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append((path or "(body)", msg))
    return out


def dump(model: BaseModel) -> dict:
    """An entity's data as plain JSON-able values, defaults included (what the topic carries)."""
    return model.model_dump(mode="json")


def grant_ref(grant: Grant) -> Ref:
    return Ref("grant", grant.tenant, grant.id)


def key_ref(key: ApiKey) -> Ref:
    return Ref("api_key", key.tenant, key_id_for(key.sha256))
