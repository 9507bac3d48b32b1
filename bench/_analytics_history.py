"""A synthetic history for the analytics benchmark, generated inside ClickHouse.

`steps(db, leads, start, days)` gives the INSERT ... SELECT statements (each over a range of
numbers, run in chunks) that write {db}.events the way the analytics writer would: every
event once, payloads shaped like the real events' JSON, and the firsts of each message's
opens and clicks set where they happen. The materialized views fill the rollups as they do
in production. Everything is a deterministic function of the row number, so a lead's sends
and engagement carry its tenant, partner and list.

The mix for N leads over the days (N = 10 M gives ~57 M events): every lead submitted once
and 8 % submitted again (duplicates); 86 % accepted, 14 % rejected (1-2 reasons); 5.5 % of the
accepted unsubscribe later; ~1.16 N sends planned for accepted leads: 5 % deferred and retried,
5 % skipped, 1 % failed, the rest dispatched through smtp / sendgrid / ses / twilio / esendex;
delivery reports for the providers that send them (95 % delivered, 3 % bounced); per emailed
message 0-3 human opens (30 % open), a privacy-proxy open on 35 %, human clicks on 30 % of
the opened (some twice), scanner clicks on 6 % (a tenth on the honeypot), 5 % of the
single human clicks revised to a burst later; complaints on 0.08 % of emails, replies to 4 % of
SMS. Cardinalities: 12 brands, 10 partners (6 per brand), 3 lists per brand, 2 channels, 5
providers, 3 template versions per list, 4 creatives per brand, 25 job feeds, 3 countries with
64 states/regions, 200 keywords, 30 categories, 6 SMS carriers.
"""
from __future__ import annotations

from dataclasses import dataclass

TENANTS = ["jobsnearby", "hireflow", "shiftly", "nursefinder", "truckerjobs", "retailnow", "techhire", "careboard",
           "gigsy", "campusjobs", "remotely", "warehousepro"]
PARTNERS = ["ziprecruiter", "indeed-xml", "careerbuilder", "landing-page", "jobcase", "talent-com", "monster",
            "glassdoor", "snagajob", "facebook-leads"]
US_STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
             "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
             "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY"]
CA_PROVINCES = ["ON", "QC", "BC", "AB", "MB", "SK", "NS", "NB", "NL", "PE"]
GB_REGIONS = ["ENG", "SCT", "WLS", "NIR"]
CARRIERS = ["verizon", "tmobile", "att", "uscellular", "rogers", "vodafone"]
EMAIL_REJECTS = ["invalid_email", "disposable_email", "blocklisted", "opted_out", "country_not_allowed",
                 "unknown_partner"]
SMS_REJECTS = ["invalid_phone", "not_mobile", "missing_sms_consent", "blocklisted"]
OUTCOMES = ["merged", "already_on_list", "kept_unsubscribed", "kept_cold", "ignored"]
UNSUBSCRIBES = ["link", "link", "inactive", "inactive", "complaint", "hard_bounce", "soft_bounces", "tenant_request"]
SKIPS = ["daily_cap", "daily_cap", "no_matching_jobs", "no_matching_jobs", "unsubscribed", "suppressed"]
DEFERS = ["rate_limited", "rate_limited", "tenant_daily_limit", "provider_transient: 429 slow down"]
FAILS = ["permanent", "permanent", "retries_exhausted", "outcome_unknown"]
INTENTS = ["stop", "stop", "stop", "help", "more", "more", "more", "other", "other", "other"]
CPCS = [15, 25, 40, 60, 90, 120]


def _arr(values) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values) + "]"


def _pick(values, h: str) -> str:
    """values[h % len] as SQL (h: an unsigned expression)."""
    return f"{_arr(values)}[({h}) % {len(values)} + 1]"


def _s(expr: str) -> str:
    return f"concat('\"', {expr}, '\"')"


def _json(**fields: str) -> str:
    """A JSON object from SQL expressions that each give an encoded value (see _s, toString)."""
    parts = []
    for i, (k, v) in enumerate(fields.items()):
        parts += [f"'{',' if i else '{'}\"{k}\":'", v]
    return f"concat({', '.join(parts)}, '}}')"


def _iso(at: str) -> str:
    return _s(f"concat(replaceOne(toString({at}), ' ', 'T'), '+00:00')")


@dataclass(frozen=True)
class Step:
    """One kind of event: `sql` is an INSERT ... SELECT over numbers {off} .. {off}+{count}."""

    label: str
    rows: int  # how many numbers it walks (it inserts those its WHERE keeps)
    sql: str


EVENT_COLUMNS = ("event_id, event_type, event_date, occurred_at, tenant, lead_id, causation_id, source, channel, "
                 "partner, list, status, outcome, reasons, payload, topic, partition, offset, ingested_at, "
                 "event_key, firsts_at, firsts_actor, firsts_delta")


def _row(event_id, event_type, at, payload, *, outcome="''", reasons="emptyArrayString()", ingested="ingested",
         firsts=None, key=None) -> str:
    f_at, f_actor, f_delta = firsts or ("emptyArrayDateTime()", "emptyArrayString()", "emptyArrayInt8()")
    return (f"{event_id} AS event_id, '{event_type}' AS event_type, toDate({at}) AS event_date, {at} AS occurred_at, "
            f"tenant, lead_id, '' AS causation_id, 'bench' AS source, channel, partner, list, '' AS status, "
            f"{outcome} AS outcome, {reasons} AS reasons, {payload} AS payload, 'bench' AS topic, "
            f"toUInt16(0) AS partition, toUInt64(n) AS offset, {ingested} AS ingested_at, "
            f"{key or event_id} AS event_key, {f_at} AS firsts_at, {f_actor} AS firsts_actor, {f_delta} AS firsts_delta")


def _lead(x: str, start: int, days: int) -> str:
    """WITH expressions of lead number x: who it is, when it came, what became of it."""
    return ", ".join([
        f"intHash64({x}) AS u1", f"intHash64({x} + 1000000007) AS u2", f"intHash64({x} + 2000000011) AS u3",
        "toUInt32(pow((u1 % 10000) / 10000, 1.6) * 12) AS ti",
        f"{_arr(TENANTS)}[ti + 1] AS tenant",
        f"{_arr(PARTNERS)}[(ti + toUInt32(pow((intDiv(u1, 16384) % 10000) / 10000, 2) * 6)) % 10 + 1] AS lead_partner",
        "intDiv(u1, 268435456) % 10 AS lj",
        "multiIf(lj < 6, 'daily-jobs', lj < 8, 'weekly-digest', 'sms-alerts') AS list",
        "if(lj < 8, 'email', 'sms') AS channel",
        "intDiv(u1, 17179869184) % 100 AS cty",
        "multiIf(cty < 85, 'US', cty < 93, 'CA', 'GB') AS country",
        f"multiIf(cty < 85, {_pick(US_STATES, 'intDiv(u3, 65536)')}, cty < 93, {_pick(CA_PROVINCES, 'intDiv(u3, 65536)')}, "
        f"{_pick(GB_REGIONS, 'intDiv(u3, 65536)')}) AS state",
        f"toUInt32({start} + u2 % {days * 86400}) AS lead_s",
        "u3 % 1000 >= 140 AS accepted",
        f"concat('lead-', toString({x})) AS lead_id",
        f"{_pick(CARRIERS, 'intDiv(u3, 4096)')} AS carrier",
    ])


def _interests() -> str:
    """keywords (0-3 of 200, popular ones more often) and categories (0-2 of 30), distinct."""
    kw = ("arrayMap(i -> concat('\"kw-', toString((toUInt32(pow((intDiv(u2, 4096) % 10000) / 10000, 2) * 200) "
          "+ i * 67) % 200), '\"'), range(toUInt32(intDiv(u2, 1048576) % 4)))")
    cat = ("arrayMap(i -> concat('\"cat-', toString((toUInt32(pow((intDiv(u2, 268435456) % 1000) / 1000, 2) * 30) "
           "+ i * 11) % 30), '\"'), range(toUInt32(intDiv(u2, 68719476736) % 3)))")
    return (f"concat('{{\"keywords\":[', arrayStringConcat({kw}, ','), '],\"categories\":[', "
            f"arrayStringConcat({cat}, ','), ']}}')")


def _location() -> str:
    return _json(zip=_s("'10001'"), city=_s("'Springfield'"), state=_s("state"), country=_s("country"))


def steps(db: str, leads: int, start: int, days: int) -> list[Step]:
    """Every INSERT of the history, in order. start: unix seconds of the first day (UTC)."""
    end = start + days * 86400
    ins = f"INSERT INTO {db}.events ({EVENT_COLUMNS})"
    ingested = f"toDateTime({end + 86400}) AS ingested"
    src = "(SELECT number + {off} AS n FROM numbers({count}))"
    lead_with = f"WITH {ingested}, {_lead('n', start, days)}"
    out = []

    # -- leads --------------------------------------------------------------------------------
    def lead_payload(extra: dict) -> str:  # the SMS carrier as the intake will record it ('' for email)
        return _json(event_id=_s("ev"), tenant=_s("tenant"), occurred_at=_iso("at"), lead_id=_s("lead_id"),
                     channel=_s("channel"), **extra, carrier=_s("if(channel = 'sms', carrier, '')"))

    submitted = lead_payload(dict(location=_location(), interests=_interests(), partner=_s("partner"), list=_s("list")))
    out.append(Step("lead.submitted", leads, f"""{ins}
{lead_with}, concat('LS', toString(n)) AS ev, toDateTime(lead_s) AS at, lead_partner AS partner
SELECT {_row('ev', 'lead.submitted', 'at', submitted)}
FROM {src}"""))
    accepted = lead_payload(dict(location=_location(), interests=_interests(), region=_s("country"),
                                 partner=_s("partner"), list=_s("list")))
    out.append(Step("lead.accepted", leads, f"""{ins}
{lead_with}, concat('LA', toString(n)) AS ev, toDateTime(lead_s + 1) AS at, lead_partner AS partner
SELECT {_row('ev', 'lead.accepted', 'at', accepted)}
FROM {src} WHERE accepted"""))
    reasons = (f"arrayDistinct(if(channel = 'email', [{_pick(EMAIL_REJECTS, 'intDiv(u3, 1024)')}, "
               f"{_pick(EMAIL_REJECTS, 'intDiv(u3, 8192)')}], [{_pick(SMS_REJECTS, 'intDiv(u3, 1024)')}, "
               f"{_pick(SMS_REJECTS, 'intDiv(u3, 8192)')}]))")
    rejected = lead_payload(dict(partner=_s("partner"), list=_s("list"),
                                 reasons="concat('[\"', arrayStringConcat(rs, '\",\"'), '\"]')"))
    out.append(Step("lead.rejected", leads, f"""{ins}
{lead_with}, concat('LR', toString(n)) AS ev, toDateTime(lead_s + 1) AS at, lead_partner AS partner,
     if(intDiv(u3, 1048576) % 5 = 0, {reasons}, arraySlice({reasons}, 1, 1)) AS rs
SELECT {_row('ev', 'lead.rejected', 'at', rejected, reasons='rs')}
FROM {src} WHERE NOT accepted"""))
    # submitted again (by the same or another partner of the brand): a duplicate
    resub = max(1, leads * 8 // 100)
    dup_with = (f"WITH {ingested}, intHash64(n + 3000000019) % {leads} AS x, {_lead('x', start, days)}, "
                f"{_arr(PARTNERS)}[(ti + intDiv(intHash64(n), 7) % 6) % 10 + 1] AS partner, "
                f"toDateTime(least(lead_s + 3600 + intHash64(n) % {30 * 86400}, {end - 1})) AS at")
    out.append(Step("lead.submitted (again)", resub, f"""{ins}
{dup_with}, concat('DS', toString(n)) AS ev
SELECT {_row('ev', 'lead.submitted', 'at', submitted)}
FROM {src}"""))
    resubmitted = lead_payload(dict(partner=_s("partner"), list=_s("list"), status=_s("'accepted'"),
                                    outcome=_s("oc")))
    out.append(Step("lead.resubmitted", resub, f"""{ins}
{dup_with}, concat('DR', toString(n)) AS ev, {_pick(OUTCOMES, 'intDiv(intHash64(n), 3)')} AS oc
SELECT {_row('ev', 'lead.resubmitted', 'at', resubmitted, outcome='oc')}
FROM {src}"""))
    unsub = lead_payload(dict(address=_s("'x'"), reason=_s("why"), partner=_s("partner")))
    out.append(Step("lead.unsubscribed", leads, f"""{ins}
{lead_with}, concat('LU', toString(n)) AS ev, lead_partner AS partner,
     toDateTime(least(lead_s + 86400 + intHash64(n + 5) % {40 * 86400}, {end - 1})) AS at,
     if(channel = 'sms' AND u3 % 3 = 0, 'sms_stop', {_pick(UNSUBSCRIBES, 'intDiv(u3, 32)')}) AS why
SELECT {_row('ev', 'lead.unsubscribed', 'at', unsub)}
FROM {src} WHERE accepted AND intHash64(n + 9) % 1000 < 55"""))

    # -- sends --------------------------------------------------------------------------------
    sends = leads * 116 // 100
    send_with = (f"WITH {ingested}, intHash64(s * 5 + 3) % {leads} AS x, {_lead('x', start, days)}, "
                 "lead_partner AS partner, intHash64(s * 7 + 1) AS v, "
                 f"toUInt32(least(lead_s + 3600 + intHash64(s) % {20 * 86400}, {end - 600})) AS t0, "
                 "concat('S', toString(s)) AS send_id, "
                 "multiIf(v % 100 < 85, 'daily', v % 100 < 97, 'welcome', 'triggered') AS kind, "
                 "intDiv(v, 128) % 1000 AS fate, intDiv(v, 262144) % 100 < 5 AS deferred, "
                 "if(channel = 'email', ['smtp', 'smtp', 'sendgrid', 'sendgrid', 'ses'][intDiv(v, 33554432) % 5 + 1], "
                 "['twilio', 'twilio', 'esendex'][intDiv(v, 33554432) % 3 + 1]) AS provider, "
                 "concat('tv-', toString(ti), '-', toString(lj), '-', toString(intDiv(v, 4294967296) % 3)) AS tv, "
                 "if(intDiv(v, 1099511627776) % 10 < 6, concat('cr-', toString(ti), '-', "
                 "toString(intDiv(v, 1099511627776) % 4)), '') AS creative, "
                 "fate >= 60 AS dispatched, intHash64(s * 13 + 5) AS w")

    def send_payload(**extra) -> str:
        return _json(event_id=_s("ev"), tenant=_s("tenant"), occurred_at=_iso("at"), lead_id=_s("lead_id"),
                     send_id=_s("send_id"), channel=_s("channel"), list=_s("list"), kind=_s("kind"), **extra,
                     partner=_s("partner"))

    send_src = "(SELECT number + {off} AS s, s AS n FROM numbers({count}))"

    def send_step(label: str, event_type: str, prefix: str, at: str, where: str, payload: str,
                  extra_with: str = "", first: str | None = None) -> Step:
        row = _firsts_row("ev", event_type, payload, "1", first) if first else _row("ev", event_type, "at", payload)
        return Step(label, sends, f"""{ins}
{send_with}, concat('{prefix}', toString(s)) AS ev, toDateTime({at}) AS at{extra_with}
SELECT {row}
FROM {send_src} WHERE accepted AND {where}""")

    out.append(send_step("send.requested", "send.requested", "SQ", "t0", "1",
                         send_payload(due_at=_iso("at"), attempt="'0'")))
    out.append(send_step("send.deferred", "send.deferred", "SD", "t0 + 5", "deferred",
                         send_payload(reason=_s(_pick(DEFERS, "intDiv(w, 8)")), attempt="'0'")))
    out.append(send_step("send.requested (retry)", "send.requested", "SR", "t0 + 65", "deferred",
                         send_payload(due_at=_iso("at"), attempt="'1'")))
    out.append(send_step("send.skipped", "send.skipped", "SK", "t0 + 70", "fate < 50",
                         send_payload(reason=_s(_pick(SKIPS, "intDiv(w, 64)")))))
    out.append(send_step("send.failed", "send.failed", "SF", "t0 + 70", "fate >= 50 AND fate < 60",
                         send_payload(provider=_s("provider"), error=_s("'550'"),
                                      reason=_s(_pick(FAILS, "intDiv(w, 512)")), attempt="'0'")))
    out.append(send_step("send.dispatched", "send.dispatched", "SX", "t0 + 70", "dispatched",
                         send_payload(provider=_s("provider"), provider_id=_s("send_id"),
                                      template=_s("concat(tenant, '/', list)"), template_version=_s("tv"),
                                      creative="if(creative = '', 'null', concat('\"', creative, '\"'))",
                                      links="'6'", attempt="'0'")))
    reported = "dispatched AND provider != 'smtp'"

    def report_payload(**extra) -> str:
        return _json(event_id=_s("ev"), tenant=_s("tenant"), occurred_at=_iso("at"), lead_id=_s("lead_id"),
                     send_id=_s("send_id"), channel=_s("channel"), provider=_s("provider"),
                     provider_id=_s("send_id"), list=_s("list"), template=_s("tv"), **extra, partner=_s("partner"))
    out.append(send_step("send.delivered", "send.delivered", "SV", "t0 + 130", f"{reported} AND w % 100 < 95",
                         report_payload()))
    out.append(send_step("send.bounced", "send.bounced", "SB", "t0 + 130",
                         f"{reported} AND w % 100 >= 95 AND w % 100 < 98",
                         report_payload(bounce_type=_s("if(intDiv(w, 100) % 3 = 0, 'hard', 'soft')"),
                                        reason=_s("'550 user unknown'"))))

    # -- engagement ---------------------------------------------------------------------------
    def touch_payload(actor: str, bot: str, reason: str, slot: str, job_source: str, cpc: str, creative: str,
                      revision: str = "'0'") -> str:
        return _json(event_id=_s("ev"), tenant=_s("tenant"), occurred_at=_iso("at"), lead_id=_s("lead_id"),
                     channel=_s("channel"), send_id=_s("send_id"), code=_s("ev"), slot=_s(slot),
                     job_key="'\"\"'", job_source=_s(job_source), position="'1'", cpc_cents=f"toString({cpc})",
                     list=_s("list"), template=_s("tv"), campaign=_s("kind"), creative=_s(creative),
                     method=_s("'GET'"), user_agent=_s("'Mozilla/5.0'"), ip=_s("'203.0.113.7'"), actor=_s(actor),
                     is_bot=bot, reason=_s(reason), via=_s("'tracking'"), revision=revision, partner=_s("partner"))

    opens = "multiIf(w % 100 < 70, 0, w % 100 < 88, 1, w % 100 < 96, 2, 3)"
    clicks = ("if(channel = 'sms', if(intDiv(w, 1000) % 100 < 12, 1, 0), "
              f"if({opens} >= 1, multiIf(intDiv(w, 1000) % 100 < 30, 1, intDiv(w, 1000) % 100 < 38, 2, 0), 0))")
    scanner = "intDiv(w, 100000000) % 100 < 6"
    revised = f"({clicks}) = 1 AND NOT ({scanner}) AND intDiv(w, 10000000000) % 100 < 5"
    job = (f"{_arr([f'feed-{i}' for i in range(25)])}[toUInt32(pow((intDiv(w, 7) % 1000) / 1000, 1.5) * 25) + 1]")
    by_k = "(SELECT number + {off} AS r, intDiv(r, 3) AS s, r % 3 AS k, r AS n FROM numbers({count}))"
    human_open = touch_payload("'human'", "'false'", "''", "'pixel_top'", "''", "0", "''")
    out.append(Step("engagement.opened (people)", sends * 3, f"""{ins}
{send_with}, concat('OH', toString(r)) AS ev, toDateTime(t0 + 600 + k * 3600 + intHash64(r) % 1800) AS at
SELECT {_firsts_row('ev', 'engagement.opened', human_open, "k = 0", "human")}
FROM {by_k} WHERE accepted AND dispatched AND channel = 'email' AND k < {opens}"""))
    out.append(send_step("engagement.opened (machines)", "engagement.opened", "OM", "t0 + 75",
                         "dispatched AND channel = 'email' AND intDiv(w, 100) % 100 < 35",
                         touch_payload("'proxy'", "'true'", "'apple_mpp'", "'pixel_top'", "''", "0", "''"),
                         first="machine"))
    by_c = "(SELECT number + {off} AS r, intDiv(r, 2) AS s, r % 2 AS k, r AS n FROM numbers({count}))"
    click_with = (f", concat('CH', toString(r)) AS ev, toDateTime(t0 + 900 + k * 3600 + intHash64(r) % 1800) AS at, "
                  f"{job} AS src, if(creative != '' AND intHash64(r) % 5 = 0, creative, '') AS crt, "
                  f"{_arr(CPCS)}[intHash64(r + 1) % {len(CPCS)} + 1] AS cpc")
    human_click = touch_payload("'human'", "'false'", "''", "if(crt != '', 'creative', 'job')", "src", "cpc", "crt")
    out.append(Step("engagement.clicked (people)", sends * 2, f"""{ins}
{send_with}{click_with}
SELECT {_firsts_row('ev', 'engagement.clicked', human_click, "k = 0", "human")}
FROM {by_c} WHERE accepted AND dispatched AND k < {clicks}"""))
    # the single human click of some messages, revised later: a scanner's burst
    revision = touch_payload("'bot'", "'true'", "'burst'", "if(crt != '', 'creative', 'job')", "src", "cpc", "crt",
                             revision="'1'")
    out.append(Step("engagement.clicked (revisions)", sends * 2, f"""{ins}
{send_with}{click_with}
SELECT {_row('ev', 'engagement.clicked', 'at', revision, ingested=f"toDateTime({end + 2 * 86400})",
             key="concat(ev, '#1')",
             firsts=("[at, at]", "['human', 'machine']", "[toInt8(-1), toInt8(1)]"))}
FROM {by_c} WHERE accepted AND dispatched AND k = 0 AND {revised}"""))
    scan = touch_payload("'bot'", "'true'", "if(honeypot, 'honeypot', 'scanner')", "if(honeypot, 'honeypot', 'job')",
                         f"if(honeypot, '', {job})", "if(honeypot, 500, 40)", "''")
    out.append(send_step("engagement.clicked (machines)", "engagement.clicked", "CM", "t0 + 80",
                         f"dispatched AND {scanner}", scan, extra_with=", intHash64(s + 77) % 10 = 0 AS honeypot",
                         first="machine"))
    complaint = _json(event_id=_s("ev"), tenant=_s("tenant"), occurred_at=_iso("at"), lead_id=_s("lead_id"),
                      send_id=_s("send_id"), provider=_s("if(provider = 'smtp', 'ses', provider)"),
                      reason=_s("'abuse'"), partner=_s("partner"))
    out.append(send_step("engagement.complained", "engagement.complained", "EC", f"least(t0 + 86400, {end - 1})",
                         "dispatched AND channel = 'email' AND intDiv(w, 1000000) % 10000 < 8", complaint))
    reply = _json(event_id=_s("ev"), tenant=_s("tenant"), occurred_at=_iso("at"), lead_id=_s("lead_id"),
                  provider=_s("provider"), from_number=_s("'+15125550100'"), to_number=_s("'+15005550001'"),
                  text=_s("'STOP'"), intent=_s(_pick(INTENTS, "intDiv(w, 3)")), keyword=_s("'STOP'"),
                  partner=_s("partner"))
    out.append(send_step("engagement.replied", "engagement.replied", "ER", "t0 + 7200",
                         "dispatched AND channel = 'sms' AND intDiv(w, 1000000) % 100 < 4", reply))
    return out


def _firsts_row(event_id: str, event_type: str, payload: str, is_first: str, actor: str) -> str:
    """A row whose firsts are +1 for `actor` at its own time when is_first holds."""
    return _row(event_id, event_type, "at", payload).replace(
        "emptyArrayDateTime() AS firsts_at, emptyArrayString() AS firsts_actor, emptyArrayInt8() AS firsts_delta",
        f"if({is_first}, [at], emptyArrayDateTime()) AS firsts_at, "
        f"if({is_first}, ['{actor}'], emptyArrayString()) AS firsts_actor, "
        f"if({is_first}, [toInt8(1)], emptyArrayInt8()) AS firsts_delta")
