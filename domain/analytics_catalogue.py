"""The analytics catalogue (pure): every metric the API answers, the dimensions it can be
grouped and filtered by, and the ClickHouse rollups that hold them.

A base metric is a sum over one rollup family (lead, send, engagement: migrations 007-009):
the rows of one `event`, optionally of one `reason` and `actor`, summing `n` (a count) or
`cents`. A derived metric (rates, eCPM, the profit shares) is computed from base metrics
after they are summed, per group and bucket, never averaged. Adding a metric is adding an
entry here; adding a dimension is a column in the rollups and an entry here (the experiment
`variant` is one already: empty until events carry it).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

UNITS = ("count", "cents", "ratio")


@dataclass(frozen=True)
class Dimension:
    name: str
    description: str


DIMENSIONS: dict[str, Dimension] = {d.name: d for d in (
    Dimension("tenant", "the brand"),
    Dimension("partner", "the lead's source: the partner whose submission first brought the lead in"),
    Dimension("list", "the list (the lead's list for lead metrics, the message's list for the rest)"),
    Dimension("channel", "email or sms"),
    Dimension("provider", "the sending provider (smtp, sendgrid, ses, twilio, esendex) for sends; the SMS "
                          "carrier for leads (empty until the intake records it); the reporting provider "
                          "or SMS gateway for complaints and replies"),
    Dimension("template", "the template version (content hash) of the message"),
    Dimension("creative", "the ad creative: carried by a message, or clicked"),
    Dimension("job_source", "the job feed the clicked job came from"),
    Dimension("kind", "the kind of message: daily, welcome, triggered, more_jobs"),
    Dimension("keyword", "a keyword of the lead's interests (a lead counts once under each of its keywords)"),
    Dimension("category", "a category of the lead's interests (a lead counts once under each of its categories)"),
    Dimension("country", "the lead's country (its location's, else its phone number's)"),
    Dimension("state", "the lead's state or region, from its location"),
    Dimension("variant", "the experiment variant (empty until experiments assign variants)"),
)}


@dataclass(frozen=True)
class Rollup:
    """A ClickHouse table of sums: its family, time grain and the dimensions it keeps."""

    table: str
    family: str  # lead | send | engagement
    grain: str  # hour | day
    dims: frozenset[str]
    events: frozenset[str] | None = None  # None: every event of its family

    @property
    def time_column(self) -> str:
        return "t" if self.grain == "hour" else "day"


_LEAD_CORE = frozenset({"tenant", "partner", "list", "channel"})
_SEND_CORE = _LEAD_CORE | {"provider", "kind"}
_LEAD_KEYED = frozenset({"lead.submitted", "lead.accepted"})

# Smallest first: a query is answered from the first rollup of its family that has its grain
# (an hourly table can answer days and weeks), its dimensions and its events.
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("lead_daily", "lead", "day", _LEAD_CORE),
    Rollup("lead_hourly", "lead", "hour", _LEAD_CORE),
    Rollup("lead_daily_detail", "lead", "day", _LEAD_CORE | {"provider", "country", "state", "variant"}),
    Rollup("lead_daily_keyword", "lead", "day", _LEAD_CORE | {"keyword"}, _LEAD_KEYED),
    Rollup("lead_daily_category", "lead", "day", _LEAD_CORE | {"category"}, _LEAD_KEYED),
    Rollup("send_daily", "send", "day", _SEND_CORE),
    Rollup("send_hourly", "send", "hour", _SEND_CORE),
    Rollup("send_daily_detail", "send", "day", _SEND_CORE | {"template", "creative", "variant"}),
    Rollup("engagement_daily", "engagement", "day", _LEAD_CORE),
    Rollup("engagement_hourly", "engagement", "hour", _LEAD_CORE),
    Rollup("engagement_daily_detail", "engagement", "day",
           _LEAD_CORE | {"template", "creative", "job_source", "provider", "variant"}),
)


@dataclass(frozen=True)
class Count:
    """A base metric's sum: `measure` over the rows of `event` (and `reason`, `actor`).

    measure: n (events), cents, brand_bp (cents times the tenant's brand share in basis
    points) or unshared_cents (cents of tenants whose share is unknown)."""

    family: str
    event: str
    reason: str | None = None
    actor: str | None = None
    measure: str = "n"


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    unit: str
    dimensions: frozenset[str]
    partner_default: bool
    count: Count | None = None  # a base metric
    inputs: tuple[str, ...] = ()  # a derived metric: the metrics it is computed from
    formula: Callable[..., float | int | None] | None = field(default=None, compare=False)
    hidden: bool = False  # an input of a derived metric, not offered on its own

    @property
    def derived(self) -> bool:
        return self.count is None

    def value(self, base: Mapping[str, int]) -> float | int | None:
        """This metric's value from the summed base metrics of one group and bucket."""
        if self.count is not None:
            return int(base.get(self.name, 0))
        return self.formula(*(METRICS[i].value(base) for i in self.inputs))


# --- dimension sets ------------------------------------------------------------------------

LEAD_GEO = frozenset({"tenant", "partner", "list", "channel", "provider", "country", "state", "keyword",
                      "category", "variant"})
LEAD_PLAIN = frozenset({"tenant", "partner", "list", "channel", "provider", "variant"})
LEAD_PERSON = frozenset({"tenant", "partner", "channel", "provider", "variant"})
SEND_PLANNED = frozenset({"tenant", "partner", "list", "channel", "kind", "variant"})
SEND_FAILED = SEND_PLANNED | {"provider"}
SEND_DISPATCHED = SEND_FAILED | {"template", "creative"}
SEND_REPORTED = frozenset({"tenant", "partner", "list", "channel", "provider", "template", "variant"})
OPENS = frozenset({"tenant", "partner", "list", "channel", "template", "variant"})
CLICKS = OPENS | {"creative", "job_source"}
MESSAGES = OPENS  # messages opened / clicked: the dimensions of the message itself
REPORTED = frozenset({"tenant", "partner", "provider", "variant"})
CONVERSIONS = frozenset({"tenant", "partner", "list", "channel", "template", "creative", "variant"})

REJECT_REASONS = ("invalid_email", "disposable_email", "invalid_phone", "not_mobile", "missing_sms_consent",
                  "country_not_allowed", "channel_not_allowed", "unknown_list", "list_channel_mismatch",
                  "unknown_partner", "blocklisted", "opted_out",
                  # a list's rules (domain.list_rules)
                  "partner_not_on_list", "carrier_excluded", "carrier_unknown", "source_cap_reached")
DUPLICATE_OUTCOMES = ("merged", "ignored", "already_on_list", "kept_unsubscribed", "kept_cold", "kept_suppressed",
                      "reactivated")
UNSUBSCRIBE_REASONS = ("link", "sms_stop", "complaint", "hard_bounce", "soft_bounces", "provider", "inactive",
                       "tenant_request")
SKIP_REASONS = ("daily_cap", "no_matching_jobs", "no_new_jobs", "missed_window", "unsubscribed", "cold", "suppressed",
                "rejected", "not_on_list", "unknown_lead", "already_sent", "already_failed", "not_resubscribed",
                "unknown_tenant")
SKIP_REASONS += ("paused", "left_list")  # the lead's choices on the preference page (domain.sending.screen)
SKIP_REASONS += ("consent_withdrawn",)  # the consent ledger (domain.consent)
DEFER_REASONS = ("rate_limited", "tenant_daily_limit", "quiet_hours", "provider_transient", "not_yet",
                 "in_flight_elsewhere", "awaiting_resubscribe")
FAIL_REASONS = ("permanent", "retries_exhausted", "outcome_unknown", "no_content")
REPLY_INTENTS = ("stop", "help", "start", "more", "other")


def _ratio(num, den):
    return None if num is None or not den else round(num / den, 6)


def _per_mille(num, den):
    return None if num is None or not den else round(num * 1000 / den, 2)


def _brand_cents(bp_cents, unshared):
    """The brand's cents, rounded half to even; unknown when a tenant's share is unknown."""
    if unshared:
        return None
    return int((Decimal(bp_cents) / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _platform_cents(revenue, bp_cents, unshared):
    brand = _brand_cents(bp_cents, unshared)
    return None if brand is None else revenue - brand


def _base(name, description, dims, count, unit="count", partner=True, hidden=False) -> Metric:
    return Metric(name, description, unit, frozenset(dims), partner, count=count, hidden=hidden)


def _derived(name, description, unit, inputs, formula, partner=True) -> Metric:
    return Metric(name, description, unit, frozenset(), partner, inputs=tuple(inputs), formula=formula)


def _catalogue() -> list[Metric]:
    L, S, E = "lead", "send", "engagement"
    m = [
        _base("leads_submitted", "leads submitted (one per contact point)", LEAD_GEO, Count(L, "lead.submitted")),
        _base("leads_accepted", "new leads accepted after validation and dedupe", LEAD_GEO, Count(L, "lead.accepted")),
        _base("leads_rejected", "submissions rejected (any reason)", LEAD_PLAIN, Count(L, "lead.rejected")),
    ]
    m += [_base(f"leads_rejected_{r}", f"submissions rejected for {r} (a submission with several reasons "
                                       f"counts under each)", LEAD_PLAIN, Count(L, "lead.rejected_reason", r))
          for r in REJECT_REASONS]
    m.append(_base("leads_duplicate", "submissions of a person the brand already knew (any outcome)", LEAD_PLAIN,
                   Count(L, "lead.resubmitted")))
    m += [_base(f"leads_duplicate_{o}", f"duplicate submissions with outcome {o}", LEAD_PLAIN,
                Count(L, "lead.resubmitted", o)) for o in DUPLICATE_OUTCOMES]
    m.append(_base("unsubscribes", "leads unsubscribed (any reason)", LEAD_PERSON, Count(L, "lead.unsubscribed")))
    m += [_base(f"unsubscribes_{r}", f"leads unsubscribed for {r}", LEAD_PERSON, Count(L, "lead.unsubscribed", r))
          for r in UNSUBSCRIBE_REASONS]
    m += [
        _base("sends_requested", "messages requested (a send id's first request)", SEND_PLANNED,
              Count(S, "send.requested", ""), partner=False),
        _base("sends_retried", "requests put back after a deferral", SEND_PLANNED, Count(S, "send.requested", "retry"),
              partner=False),
        _base("sends_dispatched", "messages a provider accepted", SEND_DISPATCHED, Count(S, "send.dispatched")),
        _base("sends_failed", "messages that failed for good or whose outcome is unknown", SEND_FAILED,
              Count(S, "send.failed"), partner=False),
    ]
    m += [_base(f"sends_failed_{r}", f"messages failed: {r}", SEND_FAILED, Count(S, "send.failed", r), partner=False)
          for r in FAIL_REASONS]
    m.append(_base("sends_deferred", "deferrals (a message may be deferred several times)", SEND_PLANNED,
                   Count(S, "send.deferred"), partner=False))
    m += [_base(f"sends_deferred_{r}", f"deferrals: {r}", SEND_PLANNED, Count(S, "send.deferred", r), partner=False)
          for r in DEFER_REASONS]
    m.append(_base("sends_skipped", "messages not sent and not to be (any reason)", SEND_PLANNED,
                   Count(S, "send.skipped"), partner=False))
    m += [_base(f"sends_skipped_{r}", f"messages skipped: {r}", SEND_PLANNED, Count(S, "send.skipped", r),
                partner=False) for r in SKIP_REASONS]
    m += [
        _base("sends_delivered", "messages the provider reports delivered (providers that report it)",
              SEND_REPORTED, Count(S, "send.delivered")),
        _base("bounces_hard", "hard bounces (the address is never mailed again)", SEND_REPORTED,
              Count(S, "send.bounced", "hard")),
        _base("bounces_soft", "soft bounces (temporary)", SEND_REPORTED, Count(S, "send.bounced", "soft")),
        _base("complaints", "spam complaints (feedback loops)", REPORTED, Count(E, "engagement.complained")),
        _base("opens_human", "opens by people (every open)", OPENS, Count(E, "engagement.opened", actor="human")),
        _base("opens_machine", "opens by machines: privacy proxies, scanners, prefetchers (every open)", OPENS,
              Count(E, "engagement.opened", actor="machine")),
        _base("opens_human_unique", "messages opened by a person, counted at their first human open", MESSAGES,
              Count(E, "unique.opened", actor="human")),
        _base("opens_machine_unique", "messages opened by a machine, counted at their first machine open", MESSAGES,
              Count(E, "unique.opened", actor="machine")),
        _base("clicks_human", "clicks by people (every click)", CLICKS, Count(E, "engagement.clicked", actor="human")),
        _base("clicks_machine", "clicks by machines: scanners, bursts, honeypot links (every click)", CLICKS,
              Count(E, "engagement.clicked", actor="machine")),
        _base("clicks_human_unique", "messages clicked by a person, counted at their first human click", MESSAGES,
              Count(E, "unique.clicked", actor="human")),
        _base("clicks_machine_unique", "messages clicked by a machine, counted at their first machine click",
              MESSAGES, Count(E, "unique.clicked", actor="machine")),
        _base("sms_replies", "SMS replies from leads (any intent)", REPORTED, Count(E, "engagement.replied")),
        _base("conversions", "goals reached (the brand's conversion events: an application completed, a hire), "
                             "attributed or not", CONVERSIONS, Count(E, "engagement.converted")),
        _base("conversions_attributed", "goals reached within the brand's window after a person's click on one of "
                                        "our messages (attributed to that click's message)", CONVERSIONS,
              Count(E, "engagement.converted", "attributed")),
        _base("conversion_revenue_cents", "the revenue the brand reported with attributed conversions", CONVERSIONS,
              Count(E, "engagement.converted", "attributed", measure="cents"), unit="cents", partner=False),
    ]
    m += [_base(f"sms_replies_{i}", f"SMS replies understood as {i}", REPORTED, Count(E, "engagement.replied", i))
          for i in REPLY_INTENTS]
    m += [
        _base("revenue_cents", "what people's clicks earned: the CPCs of human clicks (honeypots never)", CLICKS,
              Count(E, "engagement.clicked", actor="human", measure="cents"), unit="cents", partner=False),
        _base("machine_click_cents", "the CPCs machines clicked (never billed)", CLICKS,
              Count(E, "engagement.clicked", actor="machine", measure="cents"), unit="cents", partner=False),
        _base("_brand_bp_cents", "revenue times the brand share in basis points", CLICKS,
              Count(E, "engagement.clicked", actor="human", measure="brand_bp"), partner=False, hidden=True),
        _base("_unshared_cents", "revenue of tenants without a known brand share", CLICKS,
              Count(E, "engagement.clicked", actor="human", measure="unshared_cents"), partner=False, hidden=True),
        _derived("brand_share_cents", "the brand's part of the revenue (tenant file revenue.brand_share), rounded "
                                      "half to even; null where a tenant's share is unknown", "cents",
                 ["_brand_bp_cents", "_unshared_cents"], _brand_cents, partner=False),
        _derived("platform_share_cents", "the platform's part of the revenue: revenue minus the brand's part",
                 "cents", ["revenue_cents", "_brand_bp_cents", "_unshared_cents"], _platform_cents, partner=False),
        _derived("ecpm_cents", "revenue per thousand messages dispatched, in cents", "cents",
                 ["revenue_cents", "sends_dispatched"], _per_mille, partner=False),
        _derived("ctr_human", "click-through rate: messages clicked by a person / messages dispatched", "ratio",
                 ["clicks_human_unique", "sends_dispatched"], _ratio),
        _derived("click_to_open_human", "messages clicked by a person / messages opened by a person", "ratio",
                 ["clicks_human_unique", "opens_human_unique"], _ratio),
        _derived("open_rate_human", "messages opened by a person / messages dispatched", "ratio",
                 ["opens_human_unique", "sends_dispatched"], _ratio),
        _derived("delivery_rate", "messages reported delivered / messages dispatched", "ratio",
                 ["sends_delivered", "sends_dispatched"], _ratio, partner=False),
        _derived("complaint_rate", "complaints / messages dispatched", "ratio", ["complaints", "sends_dispatched"],
                 _ratio, partner=False),
        _derived("acceptance_rate", "leads accepted / leads submitted", "ratio", ["leads_accepted", "leads_submitted"],
                 _ratio),
    ]
    return m


def _with_dimensions(metrics: list[Metric]) -> dict[str, Metric]:
    """The catalogue by name; a derived metric has the dimensions all its inputs have."""
    out: dict[str, Metric] = {}
    for metric in metrics:
        if metric.derived:
            dims = frozenset.intersection(*(out[i].dimensions for i in metric.inputs))
            metric = Metric(metric.name, metric.description, metric.unit, dims, metric.partner_default,
                            inputs=metric.inputs, formula=metric.formula)
        out[metric.name] = metric
    return out


METRICS: dict[str, Metric] = _with_dimensions(_catalogue())
PUBLIC: tuple[str, ...] = tuple(name for name, m in METRICS.items() if not m.hidden)
PARTNER_DEFAULTS: frozenset[str] = frozenset(name for name in PUBLIC if METRICS[name].partner_default)

_LITERAL = re.compile(r"^[a-z0-9_.]*$")


def _check() -> None:
    """The catalogue's constants reach SQL as literals: they must be plain, and consistent."""
    for m in METRICS.values():
        assert m.unit in UNITS and m.dimensions <= DIMENSIONS.keys() and "tenant" in m.dimensions, m.name
        if m.count is not None:
            c = m.count
            assert all(_LITERAL.match(x or "") for x in (c.event, c.reason, c.actor)), m.name
            for d in m.dimensions:  # each dimension is held by some rollup of its events
                assert any(r.family == c.family and d in r.dims and (r.events is None or c.event in r.events)
                           for r in ROLLUPS), (m.name, d)


_check()


def base_inputs(names) -> list[str]:
    """The base metrics the named metrics are computed from, each once, in a stable order."""
    out: list[str] = []

    def add(name: str) -> None:
        m = METRICS[name]
        if m.derived:
            for i in m.inputs:
                add(i)
        elif name not in out:
            out.append(name)
    for n in names:
        add(n)
    return out


def partner_metrics(configured: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """What a brand's partners may see: the tenant file's analytics.partner_metrics, else the
    catalogue's partner defaults. ValueError naming any configured name that is not a metric."""
    unknown = [n for n in configured if n not in PUBLIC]
    if unknown:
        raise ValueError(f"analytics.partner_metrics: not metrics: {', '.join(unknown)} "
                         f"(see GET /v1/analytics/metrics)")
    return frozenset(configured) if configured else PARTNER_DEFAULTS
