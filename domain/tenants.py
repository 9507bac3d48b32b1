"""Tenant (brand) configuration: lists, partners, channels, validation policy, caps, keys."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.api_keys import ApiKey, hash_key, key_id_for
from domain.list_rules import ListRules
from domain.people import Grant, Person
from domain.digests import DigestConfig
from domain.experiments import ExperimentConfig
from domain.conversions import ConversionPolicy
from domain.triggers import SegmentConfig, TriggerConfig, TriggerPolicy
from domain.schedule import (DEFAULT_TIMEZONE, SMS_DEFAULT_QUIET_HOURS, parse_cadence, parse_quiet_hours,
                             parse_send_time, resolve_timezone, wall_time_in_quiet_hours)

Channel = Literal["email", "sms"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreativeConfig(Strict):
    """An ad shown in a list's messages (see domain.creatives.Creative)."""

    id: str
    headline: str
    url: str
    body: str = ""
    cta: str = "Learn more"
    image_url: str = ""
    weight: int = Field(1, ge=0)
    cpc_cents: int = Field(0, ge=0)


class ListConfig(Strict):
    channel: Channel
    send_time: str = "09:00"  # the lead's local time, HH:MM
    cadence: str = "daily"  # see domain.schedule.parse_cadence
    quiet_hours: str | None = None  # local "HH:MM-HH:MM"; SMS lists default to 21:00-08:00
    timezone: str = DEFAULT_TIMEZONE  # for leads whose own zone is unknown
    creatives: list[CreativeConfig] = Field(default_factory=list)
    jobs_per_message: int = Field(5, ge=1, le=20)
    # email alerts: a "Recommended for you" block of this many more jobs from the tenant's
    # trained recommender (domain/recommend.py), beside the matched ones; 0: no block
    recommendations: int = Field(0, ge=0, le=10)
    welcome: bool = True  # a welcome message on acceptance, on the priority path
    # providers in order: the first delivers, the next takes over on transient failure;
    # empty: the tenant's sending defaults for the channel
    providers: list[str] = Field(default_factory=list)
    template: str = ""  # the template id (see Tenant.templates); empty: the list's own name
    rules: ListRules = ListRules()
    title: str = Field("", max_length=80)  # the list's name for people (a welcome says it); empty: from its id
    # SMS lists: how many segments an alert may take (each is paid for); the list's setting wins
    # over the brand's sms_max_segments, which only bounds messages of no list (reply confirmations)
    sms_segments: Literal[1, 2] = 1

    @field_validator("send_time")
    @classmethod
    def _send_time_is_hhmm(cls, v: str) -> str:
        parse_send_time(v)
        return v

    @field_validator("cadence")
    @classmethod
    def _cadence_is_known(cls, v: str) -> str:
        parse_cadence(v)
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_are_a_window(cls, v: str | None) -> str | None:
        if v is not None:
            parse_quiet_hours(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, v: str) -> str:
        if resolve_timezone(v, DEFAULT_TIMEZONE)[1]:
            raise ValueError(f'timezone {v!r} is not an IANA zone name (e.g. "America/New_York")')
        return v

    @model_validator(mode="after")
    def _sms_not_sent_in_quiet_hours(self) -> "ListConfig":
        quiet = self.effective_quiet_hours
        if self.channel == "sms" and wall_time_in_quiet_hours(self.send_time, quiet):
            raise ValueError(f"send_time {self.send_time} falls inside the quiet hours {quiet}: "
                             "move it or change quiet_hours")
        return self

    @property
    def effective_quiet_hours(self) -> str | None:
        """The quiet window that applies: the configured one, or the SMS default for SMS lists."""
        if self.quiet_hours is None and self.channel == "sms":
            return SMS_DEFAULT_QUIET_HOURS
        return self.quiet_hours


class TemplateMeta(Strict):
    """A template's metadata. Its files are tenants/templates/<tenant>/<id>.mjml (+ .txt.j2) for
    email or <id>.sms.j2 for SMS, falling back to default/ (see projections.templates)."""

    channel: Channel
    description: str = ""


class PartnerInfo(Strict):
    """A partner (lead source) of a brand."""

    name: str = ""
    active: bool = True  # an inactive partner's leads are refused as unknown_partner


class ValidationPolicy(Strict):
    reject_disposable: bool = True
    require_sms_consent: bool = True
    sms_mobile_only: bool = True
    allowed_countries: list[str] = Field(default_factory=list)  # empty: any
    default_region: str = "US"


class DedupePolicy(Strict):
    # merge: a resubmission adds its list and attribution to the lead; ignore: only recorded
    resubmission: Literal["merge", "ignore"] = "merge"


class DkimKey(Strict):
    """One DKIM signing key of a brand (RFC 6376; Ed25519 per RFC 8463). The key itself is never
    in the configuration: `key` names where the sending processes find it, `env:NAME` (an
    environment variable holding the PEM, or for Ed25519 the base64 seed) or `file:PATH` (a
    secret-store mount; relative paths are under LEADSTREAM_SECRETS_DIR)."""

    selector: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$",
                          max_length=63)
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"
    key: str = Field(pattern=r"^(env:[A-Z_][A-Z0-9_]*|file:[^\s]+)$", max_length=500)
    # the signing domain (d=); empty: the From address's domain. DMARC needs it aligned: the
    # From domain itself or a parent of it (relaxed alignment)
    domain: str = Field("", pattern=r"^$|^[a-z0-9.-]+\.[a-z]{2,}$", max_length=253)


class Brand(Strict):
    """How the tenant signs its messages (CAN-SPAM: a physical postal address in every email)."""

    from_name: str = ""
    from_address: str = "alerts@leadstream.local"
    sms_from: str = "+15005550000"
    postal_address: str = "leadstream, 1 Example Street, Springfield, IL 62701, USA"
    unsubscribe_mailto: str = "unsubscribe@leadstream.local"
    sms_max_segments: int = Field(2, ge=1, le=6)  # replies (STOP/HELP...); alerts: the list's sms_segments
    dkim: list[DkimKey] = Field(default_factory=list, max_length=4)  # e.g. one RSA-2048 and one Ed25519

    @model_validator(mode="after")
    def _dkim_aligned(self) -> "Brand":
        sender = self.from_address.rpartition("@")[2].lower()
        for k in self.dkim:
            if k.domain and not (sender == k.domain or sender.endswith("." + k.domain)):
                raise ValueError(f"dkim selector {k.selector}: domain {k.domain} is not aligned with the From "
                                 f"domain {sender} (DMARC needs the From domain or a parent of it)")
        pairs = [(k.domain or sender, k.selector) for k in self.dkim]
        if len(set(pairs)) != len(pairs):
            raise ValueError("dkim: the same selector is listed twice for one domain")
        return self

    def dkim_domain(self, key: DkimKey) -> str:
        """The d= domain a key signs for."""
        return key.domain or self.from_address.rpartition("@")[2].lower()


class Sending(Strict):
    """Provider order per channel, and the tenant's share of the sending rate."""

    email: list[str] = Field(default_factory=lambda: ["smtp", "sendgrid"])
    sms: list[str] = Field(default_factory=lambda: ["twilio", "esendex"])
    rate_per_s: int = Field(1000, ge=1)
    # the most messages per channel and UTC day (protects the sending reputation); past it a
    # message waits for the next day (deferred, never dropped); absent: no limit
    daily_limit: dict[Channel, int] = Field(default_factory=dict)


class Engagement(Strict):
    """How the tenant counts engagement, prunes cold leads and answers SMS replies."""

    min_click_delay_s: float = Field(2.0, ge=0)  # a click sooner than this after sending is a machine
    burst_window_s: float = Field(1.0, ge=0)  # several links of one message clicked within this: a scanner
    soft_bounce_limit: int = Field(3, ge=1)  # this many soft bounces ...
    soft_bounce_window_days: int = Field(7, ge=1)  # ... within this many days suppress the address
    inactive_days: dict[Channel, int] = Field(default_factory=lambda: {"email": 30, "sms": 14})
    reactivate_on_click: bool = True  # a person's click brings back a lead pruned for inactivity
    more_keywords: list[str] = Field(default_factory=lambda: ["MORE"])  # SMS reply asking for more jobs now
    help_contact: str = ""  # appended to the HELP answer (e.g. "support@brand.example")


class Revenue(Strict):
    """The profit share: what part of the click revenue goes to the brand (the rest to the platform)."""

    brand_share: float = Field(0.7, ge=0, le=1)
    # the brand's own revenue report (its partner backend), reconciled with our figures by the
    # accounting report; empty: not reconciled
    report_url: str = ""


class AnalyticsPolicy(Strict):
    """What the brand's partners may see of the analytics (their own source's leads only)."""

    # metric names from the analytics catalogue; empty: the catalogue's partner defaults
    partner_metrics: list[str] = Field(default_factory=list)


class Webhook(Strict):
    """Where the tenant wants its events pushed (primary, and a failover), and the HMAC secret."""

    url: str
    failover_url: str = ""
    secret: str
    events: list[str] = Field(default_factory=lambda: ["lead.*", "send.*", "engagement.*"])
    attempts: int = Field(6, ge=1, le=50)


class FeedConfig(Strict):
    """A partner's job feed, polled every every_s seconds."""

    name: str
    url: str
    format: Literal["xml", "json"] = "xml"
    every_s: int = Field(900, ge=10)


SECRET_REF = r"^(env:[A-Z_][A-Z0-9_]*|file:[^\s]+)$"


class CrmSettings(Strict):
    """A brand's CRM (HubSpot): its contacts come in as leads of `list` from source `partner`,
    read by cursor every `every_s` with a `lookback_s` overlap, and at once when its webhooks
    say something changed. Secrets are named, never held: `env:NAME` or `file:PATH` (relative
    paths under LEADSTREAM_SECRETS_DIR)."""

    provider: Literal["hubspot"] = "hubspot"
    base_url: str = Field(pattern=r"^https?://[^\s]+$", max_length=500)
    token: str = Field(pattern=SECRET_REF, max_length=500, description="the private app's access token")
    app_secret: str = Field(pattern=SECRET_REF, max_length=500, description="signs its webhooks (v3)")
    app_id: str = Field("", max_length=40, description="our app: its own writes echoed back are not re-read")
    list: str = Field(min_length=1, max_length=100)
    partner: str = Field("crm", min_length=1, max_length=100)
    every_s: int = Field(300, ge=10, le=86_400)
    lookback_s: int = Field(600, ge=0, le=7 * 86_400)
    properties: dict[str, Literal["first_name", "last_name", "phone"]] = Field(
        default_factory=lambda: {"firstname": "first_name", "lastname": "last_name"},
        description="CRM property -> the lead's field it fills")
    truth: dict[str, Literal["crm", "leadstream", "latest"]] = Field(
        default_factory=dict, description="per CRM property of `properties`: which side wins a conflict "
        "(crm, leadstream, or latest: the later change by the field's own change time; the default)")
    out: Literal["off", "crm_contacts", "all"] = Field(
        "crm_contacts", description="whose engagement is written back: nobody, the leads the CRM knows "
        "(from it, or matched to a contact), or every email lead of the brand (contacts created)")
    out_requests_per_10s: int = Field(50, ge=1, le=190, description="the write-back's share of the "
                                      "CRM's rate limit (HubSpot: 100 or 190 per 10 s per app)")

    @model_validator(mode="after")
    def _truth_names_mapped_properties(self):
        unknown = sorted(set(self.truth) - set(self.properties))
        if unknown:
            raise ValueError(f"truth names {unknown}, which are not in properties {sorted(self.properties)}")
        return self


class Tenant(Strict):
    id: str
    name: str
    api_key_sha256: list[str]
    demo_key: str | None = None  # only in demo tenant files, so ./dev env can print it
    channels: list[Channel] = Field(default_factory=lambda: ["email", "sms"])
    partners: list[str] = Field(default_factory=list)  # empty: any partner
    lists: dict[str, ListConfig]
    validation: ValidationPolicy = ValidationPolicy()
    dedupe: DedupePolicy = DedupePolicy()
    daily_caps: dict[Channel, int] = Field(default_factory=lambda: {"email": 1, "sms": 1})
    brand: Brand = Brand()
    sending: Sending = Sending()
    feeds: list[FeedConfig] = Field(default_factory=list)
    engagement: Engagement = Engagement()
    revenue: Revenue = Revenue()
    analytics: AnalyticsPolicy = AnalyticsPolicy()
    webhook: Webhook | None = None
    templates: dict[str, TemplateMeta] = Field(default_factory=dict)
    partner_info: dict[str, PartnerInfo] = Field(default_factory=dict)
    triggering: TriggerPolicy = TriggerPolicy()
    conversions: ConversionPolicy = ConversionPolicy()
    triggers: dict[str, TriggerConfig] = Field(default_factory=dict)
    segments: dict[str, SegmentConfig] = Field(default_factory=dict)
    experiments: dict[str, ExperimentConfig] = Field(default_factory=dict)
    digests: dict[str, DigestConfig] = Field(default_factory=dict)
    crm: CrmSettings | None = None

    def template_of(self, list_name: str) -> str:
        """The template id a list's messages are composed with."""
        cfg = self.lists.get(list_name)
        return (cfg.template if cfg and cfg.template else list_name)

    @model_validator(mode="after")
    def _demo_key_matches(self) -> "Tenant":
        if self.demo_key and hash_key(self.demo_key) not in self.api_key_sha256:
            raise ValueError(f"tenant {self.id}: demo_key does not match any api_key_sha256")
        return self


class Blocklist(Strict):
    emails: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)


class TenantBook(Strict):
    """The whole configuration a process holds: every tenant, the API keys, the people and
    their grants, and the global blocklist (compiled from the configuration entities, see
    domain.config_book, or read straight from a tenant file)."""

    admin_key_sha256: list[str] = Field(default_factory=list)
    blocklist: Blocklist = Blocklist()
    tenants: dict[str, Tenant]
    api_keys: dict[str, ApiKey] = Field(default_factory=dict)  # by sha256
    people: dict[str, Person] = Field(default_factory=dict)  # by email
    grants: list[Grant] = Field(default_factory=list)
    version: int = 0  # the configuration's position: changes whenever anything changes

    @model_validator(mode="before")
    @classmethod
    def _ids_from_keys(cls, data: dict) -> dict:
        if not isinstance(data, dict):
            return data
        keys = dict(data.get("api_keys") or {})
        for h in data.get("admin_key_sha256") or ():
            keys.setdefault(h, ApiKey(sha256=h, role="platform_admin", name="imported"))
        for tid, t in (data.get("tenants") or {}).items():
            if isinstance(t, dict):
                t.setdefault("id", tid)
                for h in t.get("api_key_sha256") or ():
                    keys.setdefault(h, ApiKey(sha256=h, tenant=tid, role="ingest", name="imported"))
        return {**data, "api_keys": keys}

    def key_for(self, key: str, now_ms: int) -> ApiKey | None:
        """The usable API key with this text, or None."""
        found = self.api_keys.get(hash_key(key))
        return found if found is not None and found.usable(now_ms) else None

    def key_by_id(self, key_id: str) -> ApiKey | None:
        return next((k for k in self.api_keys.values() if key_id_for(k.sha256) == key_id), None)

    def grants_of(self, email: str) -> list[Grant]:
        return [g for g in self.grants if g.person == email]

    @property
    def demo_keys(self) -> dict[str, str]:
        return {tid: t.demo_key for tid, t in self.tenants.items() if t.demo_key}

    def tenant_for_key(self, key: str) -> Tenant | None:
        """The tenant whose API key this is, or None."""
        h = hash_key(key)
        for t in self.tenants.values():
            if h in t.api_key_sha256:
                return t
        return None

    def is_admin_key(self, key: str) -> bool:
        return hash_key(key) in self.admin_key_sha256


def parse_tenant_book(data: dict, origin: Path | str = "<tenant file>") -> TenantBook:
    try:
        return TenantBook.model_validate(data)
    except Exception as exc:
        raise ValueError(f"{origin}: invalid tenant file: {exc}") from exc
