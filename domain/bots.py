"""Honest engagement counting: is one tracking hit a person or a machine, and why.

A tracking hit is an open pixel load, a link click or an unsubscribe page view. Many of them
are machines: security gateways that follow every link before the mail reaches the inbox,
crawlers, scripts, and the mail privacy proxies that fetch every image on delivery (those are
counted apart as "proxy", since they stand for a delivered message, not an engaged reader).

Two layers:
- classify_request: what the request alone tells (method, user agent, IP, kind). Stateless,
  used by the tracking front and by classify.
- classify: the request verdict, then the message's recent activity (honeypot link, clicks too
  soon after delivery, several links clicked within a second). The caller keeps a SendActivity
  per send_id and updates it with remember; burst_victims names earlier clicks a burst turns
  into bots.

Pure: the only data read is the crawler list shipped in the crawler-user-agents package, at
import time; times are passed in.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import crawleruseragents

HitKind = Literal["click", "open", "unsubscribe"]
Actor = Literal["human", "bot", "proxy"]  # proxy: a mail privacy proxy fetching images (machine open)

HIT_KINDS: frozenset[str] = frozenset({"click", "open", "unsubscribe"})


@dataclass(frozen=True)
class Hit:
    """One request on a tracked URL, with what the link record tells about it."""

    kind: HitKind
    method: str  # "GET", "HEAD", "POST"
    user_agent: str
    ip: str  # textual IPv4/IPv6, "" if unknown
    at_ms: int  # when the hit arrived
    delivered_ms: int  # when the message was sent (0 if unknown)
    slot: str  # job, creative, pixel_top, pixel_bottom, unsubscribe, honeypot
    send_id: str
    code: str


@dataclass(frozen=True)
class BotPolicy:
    """The timing rules' thresholds."""

    min_click_delay_s: float = 2.0  # clicks sooner than this after delivery are machines
    burst_window_s: float = 1.0  # several different links of one message clicked within this = scanner
    burst_links: int = 2  # how many distinct links within the window make a burst
    honeypot_taints_s: float = 300.0  # after a honeypot click, clicks on that message this long after are bots

    def __post_init__(self) -> None:
        if self.burst_links < 2:
            raise ValueError(f"a burst needs at least 2 distinct links, got {self.burst_links}")
        for name in ("min_click_delay_s", "burst_window_s", "honeypot_taints_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class Verdict:
    """Who made a hit, and the rule that said so ("" for a human)."""

    actor: Actor
    # "" for a human; else head_request, crawler_ua, empty_ua, security_scanner:<name>, apple_mpp,
    # google_image_proxy, yahoo_proxy, too_fast, burst, honeypot or after_honeypot.
    reason: str

    @property
    def is_bot(self) -> bool:
        """Whether a machine made the hit (a privacy proxy counts as a machine)."""
        return self.actor != "human"


@dataclass(frozen=True)
class SendActivity:
    """What the caller knows of recent clicks on the same message (kept per send_id by the caller)."""

    recent_clicks: tuple[tuple[str, int], ...] = ()  # (code, at_ms) of earlier clicks on this send, oldest first
    honeypot_at_ms: int = 0  # when its honeypot was clicked, 0 if never


HUMAN = Verdict("human", "")

# --- Security link scanners -------------------------------------------------------------------
# (name, ua_substrings, cidrs). A user agent matches when its lower-cased text holds one of the
# substrings; "a*b" means both "a" and "b", anywhere. An IP matches when it is in one of the
# CIDRs. Only ranges the vendor publishes are listed; scanners that fetch from unpublished
# cloud ranges with browser user agents are left to the timing rules (too_fast, burst).
SCANNERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # Microsoft Defender for Office 365 Safe Links / Exchange Online Protection. Ranges: the EOP
    # entries of "Microsoft 365 URLs and IP address ranges" (learn.microsoft.com), the same set as
    # the SPF record spf.protection.outlook.com. The often-quoted 40.94.0.0/16 is in neither: left out.
    ("microsoft",
     ("microsoft office*safe", "safelinks", "safe links", "microsoft-defender", "bingpreview"),
     ("40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17",
      "2a01:111:f400::/48", "2a01:111:f403::/48")),
    # Proofpoint (URL Defense / TAP). Ranges: 67.231.144.0/20 from Proofpoint's support information
    # page (PPS networks; Proofpoint Essentials' US relays sit in it); 148.163.128.0/19 is the
    # Proofpoint on Demand (pphosted) block customers allow-list for inbound mail.
    ("proofpoint", ("proofpoint", "urldefense"), ("67.231.144.0/20", "148.163.128.0/19")),
    # Mimecast URL Protect. Ranges: "Mimecast Data Centers and URLs" (US and UK grids).
    ("mimecast", ("mimecast",),
     ("205.139.110.0/23", "216.205.24.0/24", "63.128.21.0/24", "207.211.30.0/24", "207.211.31.0/25",
      "170.10.128.0/22", "170.10.132.0/23", "195.130.217.0/24", "91.220.42.0/24", "146.101.78.0/24")),
    # Barracuda Email Security Service / Email Gateway Defense. Ranges: Barracuda Campus "Barracuda
    # Email Security Service IP Ranges" (US 209.222.80.0/21); 64.235.144.0/20 is Barracuda's own ARIN net.
    ("barracuda", ("barracuda",), ("64.235.144.0/20", "209.222.80.0/21")),
    # The following are matched by user agent only: no vendor-published scanner egress ranges.
    ("cisco", ("ironport",), ()),  # Cisco Secure Email (IronPort) URL filtering
    ("trendmicro", ("trend micro", "trendmicro"), ()),
    ("sophos", ("sophos",), ()),
    ("fireeye", ("fireeye", "trellix"), ()),  # FireEye Email Security, now Trellix
    ("symantec", ("messagelabs", "symantec"), ()),  # Symantec/Broadcom Email Security.cloud (MessageLabs)
    ("forcepoint", ("forcepoint", "websense"), ()),
    ("sonicwall", ("sonicwall",), ()),
    ("zscaler", ("zscaler",), ()),
    ("cloudmark", ("cloudmark",), ()),
)

# HTTP libraries and command-line tools: scripts are not people (clicks and opens).
_TOOL_UA_FRAGMENTS: tuple[str, ...] = (
    "python-requests", "python-urllib", "python-httpx", "aiohttp", "curl/", "wget/", "go-http-client",
    "okhttp", "java/", "java-http-client", "libwww", "apache-httpclient", "node-fetch", "axios/",
)

# Mail privacy proxies, by user agent (opens only; checked before the crawler list, which
# holds GoogleImageProxy too).
_PROXY_UA_FRAGMENTS: tuple[tuple[str, str], ...] = (
    ("GoogleImageProxy", "google_image_proxy"),  # Gmail image proxy (ggpht.com)
    ("ggpht.com", "google_image_proxy"),
    ("YahooMailProxy", "yahoo_proxy"),
)

# Apple Mail Privacy Protection fetches images from Apple's network (17.0.0.0/8, Apple's own
# /8) with a bare "Mozilla/5.0" or a WebKit user agent that names no browser.
APPLE_NETS = (ipaddress.ip_network("17.0.0.0/8"),)
_GENERIC_WEBKIT = re.compile(r"Mozilla/5\.0(?: \([^()]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\)(?: Mobile/\w+)?)?")

# --- Known crawlers -----------------------------------------------------------------------------
# crawleruseragents.is_crawler runs ~60 chunked regexes (~100 µs a call) and one regex of all
# 1,500 patterns is slower still (Python's re does not merge alternatives). So each pattern is
# indexed under a 3-character piece of text every match must contain; a user agent's
# 3-character windows pick the few patterns worth running. Patterns with no such piece are
# always run. Same answers as crawleruseragents.is_crawler (case-sensitive), checked in tests.
_GRAM = 3
_QUANTIFIERS = "?*{"
_BOUND = re.compile(r"\{\d*(?:,\d*)?\}")
_CLASS_ESCAPES = "dDwWsSbBAZ"


def _required_literals(pattern: str) -> list[str]:
    """Runs of plain text that every match of pattern contains; [] when unsure (e.g. a top-level |)."""
    if "(?" in pattern:
        return []  # inline flags or extensions: not worth reading
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i = 0

    def cut() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            i += 2
            if nxt.isalnum() and nxt not in _CLASS_ESCAPES:
                return []  # \x41, \u00e9, \1 ...: not worth reading
            if depth == 0 and not nxt.isalnum():
                run.append(nxt)  # an escaped punctuation mark stands for itself
            else:
                cut()  # \d, \s, \b ... or inside a group
            continue
        if ch == "[":  # a character class: skip to its closing bracket
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            cut()
            continue
        i += 1
        if ch == "(":
            depth += 1
            cut()
        elif ch == ")":
            depth -= 1
            cut()
        elif ch == "|":
            if depth == 0:
                return []
            cut()
        elif ch in _QUANTIFIERS:
            if run:
                run.pop()  # the quantified character may be absent
            cut()
            if ch == "{":
                bound = _BOUND.match(pattern, i - 1)
                if bound is None:
                    return []  # a literal brace: not worth reading
                i = bound.end()
        elif ch in "+.^$":
            cut()
        elif depth == 0:
            run.append(ch)
    cut()
    return runs


def _build_crawler_index(patterns: list[str]) -> tuple[dict[str, tuple[re.Pattern, ...]], re.Pattern | None]:
    """(gram -> patterns to run when a user agent holds that gram, regex of the unindexed patterns)."""
    grams_of: list[set[str]] = []
    for p in patterns:
        text = max(_required_literals(p), key=len, default="")
        grams_of.append({text[k:k + _GRAM] for k in range(len(text) - _GRAM + 1)})
    frequency = Counter(g for grams in grams_of for g in grams)
    index: dict[str, list[re.Pattern]] = {}
    rest: list[str] = []
    for p, grams in zip(patterns, grams_of):
        if grams:
            rarest = min(grams, key=lambda g: (frequency[g], g))
            index.setdefault(rarest, []).append(re.compile(p))
        else:
            rest.append(p)
    always = re.compile("|".join(f"(?:{p})" for p in rest)) if rest else None
    return {g: tuple(ps) for g, ps in index.items()}, always


_CRAWLER_INDEX, _CRAWLER_ALWAYS = _build_crawler_index(
    [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA])


def _is_listed_crawler(ua: str) -> bool:
    """Whether ua matches a pattern of the crawler-user-agents list (as crawleruseragents.is_crawler)."""
    if _CRAWLER_ALWAYS is not None and _CRAWLER_ALWAYS.search(ua):
        return True
    get = _CRAWLER_INDEX.get
    for k in range(len(ua) - _GRAM + 1):
        candidates = get(ua[k:k + _GRAM])
        if candidates and any(p.search(ua) for p in candidates):
            return True
    return False


# --- Request rules ------------------------------------------------------------------------------
_NetTable = tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...]
_SCANNER_NETS: _NetTable = tuple(
    (name, tuple(ipaddress.ip_network(c) for c in cidrs)) for name, _, cidrs in SCANNERS if cidrs)


# Each needle as the parts that must all be present; one regex of every part rules most user agents out.
_SCANNER_UA: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = tuple(
    (name, tuple(tuple(needle.split("*")) for needle in needles)) for name, needles, _ in SCANNERS)
_ANY_SCANNER_PART = re.compile("|".join(
    sorted({re.escape(part) for _, needles in _SCANNER_UA for parts in needles for part in parts})))


def _scanner_by_ua(ua_lower: str) -> str:
    """The name of the first scanner whose user-agent needles ua_lower holds, "" if none."""
    if not _ANY_SCANNER_PART.search(ua_lower):
        return ""
    for name, needles in _SCANNER_UA:
        if any(all(part in ua_lower for part in parts) for parts in needles):
            return name
    return ""


@dataclass(frozen=True)
class _UaProfile:
    """What a (non-empty) user agent says, whatever the request's kind or IP."""

    proxy: str  # google_image_proxy / yahoo_proxy, "" if not a privacy proxy's user agent
    mpp_shaped: bool  # bare "Mozilla/5.0" or browserless WebKit, as Apple MPP sends (from Apple's IPs)
    scanner: str  # security scanner name, "" if none
    tool: bool  # an HTTP library or command-line tool
    crawler: bool  # on the crawler-user-agents list


@functools.lru_cache(maxsize=4096)
def _ua_profile(ua: str) -> _UaProfile:
    lower = ua.lower()
    return _UaProfile(
        proxy=next((reason for fragment, reason in _PROXY_UA_FRAGMENTS if fragment in ua), ""),
        mpp_shaped=_GENERIC_WEBKIT.fullmatch(ua) is not None,
        scanner=_scanner_by_ua(lower),
        tool=any(fragment in lower for fragment in _TOOL_UA_FRAGMENTS),
        crawler=_is_listed_crawler(ua),
    )


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ip ("[v6]", zone ids and IPv4-mapped IPv6 accepted), None if not an address."""
    text = ip.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)
def _ip_owner(ip: str) -> tuple[str, bool]:
    """(scanner whose published range holds ip or "", whether ip is Apple's)."""
    address = _parse_ip(ip)
    if address is None:
        return "", False
    scanner = next((name for name, nets in _SCANNER_NETS if any(address in net for net in nets)), "")
    return scanner, any(address in net for net in APPLE_NETS)


def classify_request(method: str, user_agent: str, ip: str, kind: HitKind) -> Verdict:
    """What can be decided from the request alone (stateless; used by the tracking front and by classify).

    Order: HEAD, unsubscribe POST (always human: a person or RFC 8058 one-click), empty user agent,
    privacy proxies (opens; a proxy's user agent on anything else is a crawler), security scanners
    (user agent or published IP range), HTTP tools (clicks and opens), the crawler list.
    """
    if kind not in HIT_KINDS:
        raise ValueError(f"unknown hit kind {kind!r}")
    verb = method.strip().upper()
    if verb == "HEAD":
        return Verdict("bot", "head_request")
    if kind == "unsubscribe" and verb == "POST":
        return HUMAN
    ua = user_agent.strip()
    if not ua:
        return Verdict("bot", "empty_ua")
    profile = _ua_profile(ua)
    ip_scanner, apple_ip = _ip_owner(ip)
    proxy = profile.proxy or ("apple_mpp" if profile.mpp_shaped and apple_ip else "")
    if proxy:
        return Verdict("proxy", proxy) if kind == "open" else Verdict("bot", "crawler_ua")
    scanner = profile.scanner or ip_scanner
    if scanner:
        return Verdict("bot", f"security_scanner:{scanner}")
    if profile.tool and kind in ("click", "open"):
        return Verdict("bot", "crawler_ua")
    if profile.crawler:
        return Verdict("bot", "crawler_ua")
    return HUMAN


# --- Message rules (clicks) ---------------------------------------------------------------------
def _near(at_ms: int, then_ms: int, window_s: float) -> bool:
    # Both directions: the caller may see hits slightly out of order.
    return abs(at_ms - then_ms) <= window_s * 1000


def _other_codes_near(activity: SendActivity, hit: Hit, policy: BotPolicy) -> tuple[str, ...]:
    """Distinct codes other than hit.code clicked within burst_window_s of the hit, first seen first."""
    codes = (code for code, at in activity.recent_clicks
             if code != hit.code and _near(hit.at_ms, at, policy.burst_window_s))
    return tuple(dict.fromkeys(codes))


def classify(hit: Hit, activity: SendActivity, policy: BotPolicy) -> Verdict:
    """The full verdict: request rules first, then honeypot, after-honeypot, too-fast, burst (clicks only)."""
    verdict = classify_request(hit.method, hit.user_agent, hit.ip, hit.kind)
    if verdict.is_bot or hit.kind != "click":
        return verdict
    if hit.slot == "honeypot":
        return Verdict("bot", "honeypot")
    since_honeypot = hit.at_ms - activity.honeypot_at_ms
    if activity.honeypot_at_ms > 0 and 0 <= since_honeypot <= policy.honeypot_taints_s * 1000:
        return Verdict("bot", "after_honeypot")
    if hit.delivered_ms > 0 and hit.at_ms - hit.delivered_ms < policy.min_click_delay_s * 1000:
        return Verdict("bot", "too_fast")
    if len(_other_codes_near(activity, hit, policy)) >= policy.burst_links - 1:
        return Verdict("bot", "burst")
    return HUMAN


def _decided_by_request(verdict: Verdict) -> bool:
    return verdict.actor == "proxy" or verdict.reason in ("head_request", "empty_ua", "crawler_ua") \
        or verdict.reason.startswith("security_scanner:")


def remember(activity: SendActivity, hit: Hit, verdict: Verdict, policy: BotPolicy) -> SendActivity:
    """The activity after this hit (clicks only; keeps only clicks within burst_window_s of hit.at_ms
    plus the honeypot time).

    A click the request alone marked as a machine (HEAD, scanner, crawler...) is neither kept nor
    allowed to set the honeypot time: that machine is already named, a burst would only overwrite
    its better reason, and its honeypot hit must not taint a person clicking minutes later.
    """
    if hit.kind != "click":
        return activity
    kept = [(code, at) for code, at in activity.recent_clicks if _near(hit.at_ms, at, policy.burst_window_s)]
    honeypot_at = activity.honeypot_at_ms
    if not _decided_by_request(verdict):
        kept.append((hit.code, hit.at_ms))
        if hit.slot == "honeypot":
            honeypot_at = max(honeypot_at, hit.at_ms)
    kept.sort(key=lambda click: click[1])  # stable: equal times keep arrival order
    return SendActivity(recent_clicks=tuple(kept), honeypot_at_ms=honeypot_at)


def burst_victims(activity: SendActivity, hit: Hit, policy: BotPolicy) -> tuple[str, ...]:
    """Codes of earlier clicks (in activity) that this hit turns into a burst, i.e. that were within
    burst_window_s and on a different code: the caller reclassifies those earlier hits as bots
    (reason 'burst'). Each code once, first seen first.

    () when the hit is not a click or does not make a burst.
    """
    if hit.kind != "click":
        return ()
    others = _other_codes_near(activity, hit, policy)
    return others if len(others) >= policy.burst_links - 1 else ()
