import dataclasses
import ipaddress

import crawleruseragents
import pytest

from domain import bots
from domain.bots import (HUMAN, SCANNERS, BotPolicy, Hit, SendActivity, Verdict, burst_victims, classify,
                         classify_request, remember)

# Real user agents of people's browsers and mail clients.
CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
EDGE_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80")
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.4.1 Safari/605.1.15")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1")
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Mobile Safari/537.36")
GMAIL_ANDROID_WEBVIEW = ("Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP1A.240405.002; wv) AppleWebKit/537.36 "
                         "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36")
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17531; Pro)"
THUNDERBIRD = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1"
IPHONE_MAIL = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Mobile/15E148")
APPLE_MAIL_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
PEOPLE = [CHROME_WIN, EDGE_WIN, FIREFOX_WIN, SAFARI_MAC, SAFARI_IPHONE, CHROME_ANDROID, GMAIL_ANDROID_WEBVIEW,
          OUTLOOK_DESKTOP, THUNDERBIRD, IPHONE_MAIL, APPLE_MAIL_MAC]

GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

HOME_IP = "73.15.201.9"  # a residential ISP address
HOME_IP6 = "2601:647:4d00:1a0::5"
APPLE_IP = "17.58.101.2"

T0 = 1_700_000_000_000  # delivery time
LATER = T0 + 60_000  # a minute after delivery
POLICY = BotPolicy()


def hit(**over) -> Hit:
    base = dict(kind="click", method="GET", user_agent=CHROME_WIN, ip=HOME_IP, at_ms=LATER, delivered_ms=T0,
                slot="job", send_id="S1", code="A")
    base.update(over)
    return Hit(**base)


def bot(reason: str) -> Verdict:
    return Verdict("bot", reason)


def proxy(reason: str) -> Verdict:
    return Verdict("proxy", reason)


# --- people -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ua", PEOPLE)
@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe"])
@pytest.mark.parametrize("ip", [HOME_IP, HOME_IP6, ""])
def test_people_are_human(ua, kind, ip):
    assert classify_request("GET", ua, ip, kind) == HUMAN


@pytest.mark.parametrize("ua", PEOPLE)
def test_people_clicking_later_are_human_in_full(ua):
    assert classify(hit(user_agent=ua), SendActivity(), POLICY) == HUMAN


def test_verdict_is_bot():
    assert not HUMAN.is_bot and bot("burst").is_bot and proxy("apple_mpp").is_bot


# --- request rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe"])
@pytest.mark.parametrize("method", ["HEAD", "head", " HEAD "])
def test_head_is_bot_for_every_kind(kind, method):
    assert classify_request(method, CHROME_WIN, HOME_IP, kind) == bot("head_request")


@pytest.mark.parametrize("ua,ip", [
    ("", ""), ("python-requests/2.31.0", HOME_IP), (GOOGLEBOT, HOME_IP), (GMAIL_PROXY, HOME_IP),
    (CHROME_WIN, "40.107.22.5"), ("Mozilla/5.0", APPLE_IP), ("Mozilla/5.0 (compatible; Proofpoint)", ""),
])
@pytest.mark.parametrize("method", ["POST", "post"])
def test_unsubscribe_post_is_always_human(ua, ip, method):
    assert classify_request(method, ua, ip, "unsubscribe") == HUMAN
    assert classify(hit(kind="unsubscribe", method=method, user_agent=ua, ip=ip, slot="unsubscribe",
                        at_ms=T0 + 1), SendActivity(honeypot_at_ms=T0), POLICY) == HUMAN


@pytest.mark.parametrize("kind", ["click", "open"])
def test_post_on_click_or_open_follows_the_rules(kind):
    assert classify_request("POST", "", HOME_IP, kind) == bot("empty_ua")
    assert classify_request("POST", CHROME_WIN, HOME_IP, kind) == HUMAN


@pytest.mark.parametrize("ua", ["", " ", "\t"])
@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe"])
def test_empty_user_agent_is_bot(ua, kind):
    assert classify_request("GET", ua, HOME_IP, kind) == bot("empty_ua")


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        classify_request("GET", CHROME_WIN, HOME_IP, "redirect")


# --- privacy proxies ----------------------------------------------------------------------------
@pytest.mark.parametrize("ua,ip,want", [
    (GMAIL_PROXY, "66.249.84.1", proxy("google_image_proxy")),
    ("Mozilla/5.0 (via ggpht.com)", HOME_IP, proxy("google_image_proxy")),
    (YAHOO_PROXY, "98.137.11.164", proxy("yahoo_proxy")),
    ("Mozilla/5.0", APPLE_IP, proxy("apple_mpp")),
    (APPLE_MAIL_MAC, "17.248.1.1", proxy("apple_mpp")),
    (IPHONE_MAIL, APPLE_IP, proxy("apple_mpp")),
    ("Mozilla/5.0", "::ffff:17.58.101.2", proxy("apple_mpp")),  # IPv4-mapped IPv6
    # the same user agents away from Apple's network are people's mail clients
    (IPHONE_MAIL, HOME_IP, HUMAN),
    (APPLE_MAIL_MAC, HOME_IP, HUMAN),
    (IPHONE_MAIL, HOME_IP6, HUMAN),
    ("Mozilla/5.0", HOME_IP, HUMAN),
    ("Mozilla/5.0", "", HUMAN),
    # a browser that names itself, even on Apple's network, is a person (e.g. at Apple)
    (SAFARI_MAC, APPLE_IP, HUMAN),
    (SAFARI_IPHONE, APPLE_IP, HUMAN),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Extra/1",
     APPLE_IP, HUMAN),
    ("Mozilla/5.0", "18.0.0.1", HUMAN),  # just past 17.0.0.0/8
    ("Mozilla/5.0", "16.255.255.255", HUMAN),
])
def test_privacy_proxies_on_open(ua, ip, want):
    assert classify_request("GET", ua, ip, "open") == want


@pytest.mark.parametrize("ua,ip", [(GMAIL_PROXY, HOME_IP), (YAHOO_PROXY, HOME_IP), ("Mozilla/5.0", APPLE_IP),
                                   (IPHONE_MAIL, APPLE_IP)])
@pytest.mark.parametrize("kind", ["click", "unsubscribe"])
def test_privacy_proxy_doing_anything_but_open_is_a_crawler(ua, ip, kind):
    assert classify_request("GET", ua, ip, kind) == bot("crawler_ua")


def test_gmail_proxy_open_is_proxy_but_its_click_is_bot_in_full():
    assert classify(hit(kind="open", slot="pixel_top", user_agent=GMAIL_PROXY), SendActivity(), POLICY) \
        == proxy("google_image_proxy")
    assert classify(hit(user_agent=GMAIL_PROXY), SendActivity(), POLICY) == bot("crawler_ua")


def test_proxy_is_checked_before_the_crawler_list():
    assert crawleruseragents.is_crawler(GMAIL_PROXY) and crawleruseragents.is_crawler(YAHOO_PROXY)
    assert classify_request("GET", GMAIL_PROXY, HOME_IP, "open").actor == "proxy"


# --- security scanners --------------------------------------------------------------------------
@pytest.mark.parametrize("ua,name", [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
     "microsoft"),
    ("Microsoft Office/16.0 (Microsoft Outlook; Safe Links)", "microsoft"),
    ("Microsoft-Defender-SafeLinks/1.0", "microsoft"),
    ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", "proofpoint"),
    ("urldefense-scanner/2.1", "proofpoint"),
    ("Mozilla/5.0 (compatible; Mimecast URL Protect)", "mimecast"),
    ("Barracuda Sentinel (EE)", "barracuda"),
    ("Mozilla/5.0 (compatible; Cisco IronPort URL Filter)", "cisco"),
    ("Trend Micro Email Security URL Scanner", "trendmicro"),
    ("Mozilla/5.0 (compatible; Sophos Email Protection)", "sophos"),
    ("FireEye-URLScanner/1.0", "fireeye"),
    ("Symantec MessageLabs Web Scanner", "symantec"),
    ("Mozilla/5.0 (compatible; MessageLabs)", "symantec"),
    ("Forcepoint Email Security", "forcepoint"),
    ("SonicWall Capture Client", "sonicwall"),
    ("Mozilla/5.0 Zscaler link check", "zscaler"),
    ("Cloudmark Authority", "cloudmark"),
])
@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe"])
def test_scanner_by_user_agent(ua, name, kind):
    assert classify_request("GET", ua, HOME_IP, kind) == bot(f"security_scanner:{name}")


@pytest.mark.parametrize("ip,name", [
    ("40.92.0.1", "microsoft"), ("40.93.255.254", "microsoft"), ("40.107.22.5", "microsoft"),
    ("52.100.0.1", "microsoft"), ("52.103.200.7", "microsoft"), ("104.47.10.10", "microsoft"),
    ("2a01:111:f403:c200::1", "microsoft"), ("[2a01:111:f400::25]", "microsoft"),
    ("148.163.128.1", "proofpoint"), ("148.163.159.254", "proofpoint"), ("67.231.152.10", "proofpoint"),
    ("205.139.110.20", "mimecast"), ("205.139.111.20", "mimecast"), ("207.211.31.100", "mimecast"),
    ("170.10.133.5", "mimecast"), ("91.220.42.9", "mimecast"), ("195.130.217.77", "mimecast"),
    ("64.235.150.1", "barracuda"), ("209.222.82.3", "barracuda"),
])
@pytest.mark.parametrize("ua", [CHROME_WIN, SAFARI_IPHONE])
def test_scanner_by_ip_with_a_browser_user_agent(ip, name, ua):
    assert classify_request("GET", ua, ip, "click") == bot(f"security_scanner:{name}")


@pytest.mark.parametrize("ip", [
    "40.94.1.1",  # often quoted, not in Microsoft's published list
    "40.91.255.255", "40.108.0.1", "52.104.0.1", "104.47.128.1",
    "148.163.160.1", "67.231.160.1", "207.211.31.200", "64.235.160.1", "209.222.88.1",
    "2a01:111:f401::1",
])
def test_addresses_next_to_scanner_ranges_are_people(ip):
    assert classify_request("GET", CHROME_WIN, ip, "click") == HUMAN


def test_scanner_ua_wins_over_the_crawler_list():
    bing = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b"
    assert crawleruseragents.is_crawler(bing)
    assert classify_request("GET", bing, HOME_IP, "click") == bot("security_scanner:microsoft")


def test_outlook_desktop_is_not_microsoft_safe_links():
    assert classify_request("GET", OUTLOOK_DESKTOP, HOME_IP, "open") == HUMAN


def test_scanner_table_is_well_formed():
    names = [name for name, _, _ in SCANNERS]
    assert len(names) == len(set(names)) and all(n == n.lower() and n.isalnum() for n in names)
    for name, needles, cidrs in SCANNERS:
        assert needles and all(n == n.lower() for n in needles), name
        for cidr in cidrs:
            ipaddress.ip_network(cidr)  # strict: a host bit set would raise
    assert {"microsoft", "proofpoint", "mimecast", "barracuda"} <= set(names)


# --- IP text that is not a plain IPv4 address ---------------------------------------------------
@pytest.mark.parametrize("ip", ["", "   ", "unknown", "999.1.1.1", "::1", "2001:db8::1", "[2001:db8::1]",
                                "fe80::1%eth0", "2001:db8::zz", "1.2.3.4, 5.6.7.8", HOME_IP6])
@pytest.mark.parametrize("kind", ["click", "open"])
def test_odd_or_v6_addresses_do_not_crash(ip, kind):
    assert classify_request("GET", CHROME_WIN, ip, kind) == HUMAN
    assert classify_request("GET", "Mozilla/5.0", ip, "open") == HUMAN


# --- scripts and crawlers -----------------------------------------------------------------------
@pytest.mark.parametrize("ua", ["python-requests/2.31.0", "Python-urllib/3.11", "curl/8.4.0", "Wget/1.21.4",
                                "Go-http-client/1.1", "okhttp/4.12.0", "Java/17.0.2", "libwww-perl/6.72",
                                "Apache-HttpClient/4.5.14 (Java/17.0.9)", "node-fetch/1.0", "axios/1.6.8",
                                "Python/3.11 aiohttp/3.9.5", "python-httpx/0.27.0"])
@pytest.mark.parametrize("kind", ["click", "open"])
def test_scripts_are_crawlers_on_click_and_open(ua, kind):
    assert classify_request("GET", ua, HOME_IP, kind) == bot("crawler_ua")


def test_script_rule_spares_unsubscribe_page_views_but_the_crawler_list_does_not():
    assert not crawleruseragents.is_crawler("Java/17.0.2")
    assert classify_request("GET", "Java/17.0.2", HOME_IP, "unsubscribe") == HUMAN
    assert classify_request("GET", "curl/8.4.0", HOME_IP, "unsubscribe") == bot("crawler_ua")


@pytest.mark.parametrize("ua", [
    GOOGLEBOT,
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) "
    "Chrome/116.0.1938.76 Safari/537.36",
])
@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe"])
def test_listed_crawlers(ua, kind):
    assert classify_request("GET", ua, HOME_IP, kind) == bot("crawler_ua")


def test_fast_crawler_matcher_agrees_with_the_package():
    samples = [ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry.get("instances", [])]
    samples += PEOPLE + [GMAIL_PROXY, YAHOO_PROXY, "", "x", "Mozilla/5.0", "!!!!", "test googlebot/2.0 test"]
    assert len(samples) > 2000
    disagree = [ua for ua in samples if bots._is_listed_crawler(ua) != crawleruseragents.is_crawler(ua)]
    assert disagree == []


@pytest.mark.parametrize("pattern,want", [
    ("Googlebot\\/", ["Googlebot/"]),
    ("^curl", ["curl"]),
    ("[wW]get", ["get"]),
    ("AdsBot-Google([^-]|$)", ["AdsBot-Google"]),
    ("BlogTraffic\\/\\d\\.\\d+ Feed-Fetcher", ["BlogTraffic/", ".", " Feed-Fetcher"]),
    ("ab?c", ["a", "c"]),
    ("ab+c", ["ab", "c"]),
    ("ab{0,2}cd", ["a", "cd"]),
    ("Automaton|Newsify", []),
    ("(?i)bot", []),
    ("a\\x41b", []),
    ("a{b", []),
])
def test_required_literals(pattern, want):
    assert bots._required_literals(pattern) == want


def test_user_agent_profiles_are_cached():
    bots._ua_profile.cache_clear()
    ua = CHROME_WIN + " cache-probe"
    for _ in range(5):
        assert classify_request("GET", ua, HOME_IP, "click") == HUMAN
    for at in range(5):
        classify(hit(user_agent=ua, at_ms=LATER + at * 10_000), SendActivity(), POLICY)
    info = bots._ua_profile.cache_info()
    assert info.maxsize == 4096 and info.misses == 1 and info.hits == 9


# --- message rules ------------------------------------------------------------------------------
def test_honeypot_click_is_bot():
    assert classify(hit(slot="honeypot"), SendActivity(), POLICY) == bot("honeypot")


def test_honeypot_comes_after_request_rules_and_before_timing():
    assert classify(hit(slot="honeypot", user_agent=GOOGLEBOT), SendActivity(), POLICY) == bot("crawler_ua")
    assert classify(hit(slot="honeypot", at_ms=T0 + 10), SendActivity(), POLICY) == bot("honeypot")


@pytest.mark.parametrize("since,want", [
    (0, bot("after_honeypot")), (1, bot("after_honeypot")), (300_000, bot("after_honeypot")),
    (300_001, HUMAN), (-1, HUMAN), (-5_000, HUMAN),
])
def test_after_honeypot_window(since, want):
    honeypot_at = LATER
    got = classify(hit(at_ms=honeypot_at + since), SendActivity(honeypot_at_ms=honeypot_at), POLICY)
    assert got == want


def test_after_honeypot_only_taints_clicks():
    activity = SendActivity(honeypot_at_ms=LATER)
    assert classify(hit(kind="open", slot="pixel_top", at_ms=LATER + 1), activity, POLICY) == HUMAN
    assert classify(hit(kind="unsubscribe", slot="unsubscribe", at_ms=LATER + 1), activity, POLICY) == HUMAN


def test_after_honeypot_comes_before_too_fast():
    activity = SendActivity(honeypot_at_ms=T0 + 100)
    assert classify(hit(at_ms=T0 + 200), activity, POLICY) == bot("after_honeypot")


@pytest.mark.parametrize("delay_ms,want", [
    (0, bot("too_fast")), (500, bot("too_fast")), (1_999, bot("too_fast")),
    (2_000, HUMAN), (2_001, HUMAN), (-50, bot("too_fast")),
])
def test_too_fast_edges(delay_ms, want):
    assert classify(hit(at_ms=T0 + delay_ms), SendActivity(), POLICY) == want


def test_too_fast_needs_a_delivery_time_and_a_click():
    assert classify(hit(delivered_ms=0, at_ms=5), SendActivity(), POLICY) == HUMAN
    assert classify(hit(kind="open", slot="pixel_top", at_ms=T0 + 1), SendActivity(), POLICY) == HUMAN
    assert classify(hit(kind="unsubscribe", slot="unsubscribe", at_ms=T0 + 1), SendActivity(), POLICY) == HUMAN


def test_too_fast_follows_the_policy():
    assert classify(hit(at_ms=T0 + 4_000), SendActivity(), BotPolicy(min_click_delay_s=5)) == bot("too_fast")
    assert classify(hit(at_ms=T0 + 1), SendActivity(), BotPolicy(min_click_delay_s=0)) == HUMAN


def test_too_fast_comes_before_burst():
    activity = SendActivity(recent_clicks=(("B", T0 + 100),))
    assert classify(hit(at_ms=T0 + 300), activity, POLICY) == bot("too_fast")


@pytest.mark.parametrize("recent,want", [
    ((("B", LATER - 500),), bot("burst")),
    ((("B", LATER - 1_000),), bot("burst")),  # exactly the window
    ((("B", LATER - 1_001),), HUMAN),
    ((("B", LATER),), bot("burst")),
    ((("B", LATER + 300),), bot("burst")),  # seen out of order
    ((("A", LATER - 200),), HUMAN),  # a double click on the same link
    ((("A", LATER - 400), ("A", LATER - 200)), HUMAN),
    ((("B", LATER - 5_000), ("A", LATER - 100)), HUMAN),
    ((), HUMAN),
])
def test_burst(recent, want):
    assert classify(hit(code="A"), SendActivity(recent_clicks=recent), POLICY) == want


@pytest.mark.parametrize("recent,want", [
    ((("B", LATER - 300),), HUMAN),
    ((("B", LATER - 300), ("B", LATER - 200)), HUMAN),  # the same other link twice is one link
    ((("B", LATER - 300), ("C", LATER - 200)), bot("burst")),
])
def test_burst_links_counts_distinct_links(recent, want):
    policy = BotPolicy(burst_links=3)
    assert classify(hit(code="A"), SendActivity(recent_clicks=recent), policy) == want


def test_burst_only_applies_to_clicks():
    activity = SendActivity(recent_clicks=(("B", LATER - 100),))
    assert classify(hit(kind="open", slot="pixel_top"), activity, POLICY) == HUMAN


@pytest.mark.parametrize("over", [dict(burst_links=1), dict(burst_links=0), dict(min_click_delay_s=-1),
                                  dict(burst_window_s=-0.5), dict(honeypot_taints_s=-1)])
def test_policy_refuses_nonsense(over):
    with pytest.raises(ValueError):
        BotPolicy(**over)


# --- burst_victims ------------------------------------------------------------------------------
def test_burst_victims_names_other_links_in_the_window_once_each_first_seen_first():
    activity = SendActivity(recent_clicks=(("X", LATER - 3_000), ("C", LATER - 900), ("A", LATER - 800),
                                           ("B", LATER - 500), ("C", LATER - 100)))
    assert burst_victims(activity, hit(code="A"), POLICY) == ("C", "B")


@pytest.mark.parametrize("activity,h", [
    (SendActivity(), hit()),
    (SendActivity(recent_clicks=(("A", LATER - 100),)), hit(code="A")),  # double click
    (SendActivity(recent_clicks=(("B", LATER - 1_500),)), hit(code="A")),  # out of the window
    (SendActivity(recent_clicks=(("B", LATER - 100),)), hit(kind="open", slot="pixel_top")),
])
def test_burst_victims_none_without_a_burst(activity, h):
    assert burst_victims(activity, h, POLICY) == ()


def test_burst_victims_needs_enough_links():
    activity = SendActivity(recent_clicks=(("B", LATER - 100),))
    assert burst_victims(activity, hit(code="A"), BotPolicy(burst_links=3)) == ()
    activity = SendActivity(recent_clicks=(("B", LATER - 200), ("C", LATER - 100)))
    assert burst_victims(activity, hit(code="A"), BotPolicy(burst_links=3)) == ("B", "C")


# --- remember -----------------------------------------------------------------------------------
def test_remember_ignores_opens_and_unsubscribes():
    activity = SendActivity(recent_clicks=(("B", 1),), honeypot_at_ms=0)
    for h in (hit(kind="open", slot="pixel_top"), hit(kind="unsubscribe", slot="unsubscribe")):
        assert remember(activity, h, HUMAN, POLICY) is activity


def test_remember_adds_the_click_and_drops_clicks_out_of_the_window():
    activity = SendActivity(recent_clicks=(("X", LATER - 1_001), ("B", LATER - 1_000), ("C", LATER - 10)))
    after = remember(activity, hit(code="A"), HUMAN, POLICY)
    assert after == SendActivity(recent_clicks=(("B", LATER - 1_000), ("C", LATER - 10), ("A", LATER)))


def test_remember_keeps_oldest_first_when_clicks_arrive_out_of_order():
    activity = SendActivity(recent_clicks=(("B", LATER + 200),))
    after = remember(activity, hit(code="A"), HUMAN, POLICY)
    assert after.recent_clicks == (("A", LATER), ("B", LATER + 200))


def test_remember_records_the_honeypot_time_and_keeps_the_latest():
    after = remember(SendActivity(), hit(slot="honeypot", code="H"), bot("honeypot"), POLICY)
    assert after == SendActivity(recent_clicks=(("H", LATER),), honeypot_at_ms=LATER)
    again = remember(after, hit(slot="honeypot", code="H", at_ms=LATER - 50_000), bot("honeypot"), POLICY)
    assert again.honeypot_at_ms == LATER
    kept = remember(after, hit(code="A", at_ms=LATER + 90_000), bot("after_honeypot"), POLICY)
    assert kept == SendActivity(recent_clicks=(("A", LATER + 90_000),), honeypot_at_ms=LATER)


@pytest.mark.parametrize("verdict", [bot("too_fast"), bot("burst"), bot("after_honeypot"), HUMAN])
def test_remember_keeps_clicks_judged_by_timing(verdict):
    assert remember(SendActivity(), hit(), verdict, POLICY).recent_clicks == (("A", LATER),)


@pytest.mark.parametrize("verdict", [bot("head_request"), bot("empty_ua"), bot("crawler_ua"),
                                     bot("security_scanner:proofpoint"), proxy("google_image_proxy")])
def test_remember_leaves_out_clicks_the_request_already_named(verdict):
    activity = SendActivity(recent_clicks=(("B", LATER - 100),))
    assert remember(activity, hit(), verdict, POLICY) == activity


def test_a_named_scanner_on_the_honeypot_does_not_taint_the_message():
    scanner_on_honeypot = hit(slot="honeypot", code="H", ip="40.107.22.5", at_ms=T0 + 500)
    verdict = classify(scanner_on_honeypot, SendActivity(), POLICY)
    assert verdict == bot("security_scanner:microsoft")
    after = remember(SendActivity(), scanner_on_honeypot, verdict, POLICY)
    assert after == SendActivity()
    assert classify(hit(at_ms=T0 + 60_000), after, POLICY) == HUMAN


def test_remember_returns_a_new_frozen_value():
    activity = SendActivity()
    after = remember(activity, hit(), HUMAN, POLICY)
    assert activity == SendActivity() and after is not activity
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.honeypot_at_ms = 1  # type: ignore[misc]


# --- a message's clicks, end to end -------------------------------------------------------------
def _run(hits, policy=POLICY):
    """Feed hits through classify/burst_victims/remember as the caller would; verdicts per hit index."""
    activity, verdicts = SendActivity(), []
    for h in hits:
        verdict = classify(h, activity, policy)
        if verdict == bot("burst"):
            victims = set(burst_victims(activity, h, policy))
            verdicts = [bot("burst") if hits[i].code in victims and hits[i].at_ms >= h.at_ms - 1_000 else v
                        for i, v in enumerate(verdicts)]
        verdicts.append(verdict)
        activity = remember(activity, h, verdict, policy)
    return verdicts


def test_scanner_with_a_browser_user_agent_clicking_every_link_is_caught_by_burst():
    start = T0 + 30_000
    hits = [hit(code=c, at_ms=start + i * 150) for i, c in enumerate("ABC")]
    assert _run(hits) == [bot("burst")] * 3


def test_person_double_clicking_then_clicking_another_link_later_stays_human():
    hits = [hit(code="A", at_ms=LATER), hit(code="A", at_ms=LATER + 180), hit(code="B", at_ms=LATER + 4_000)]
    assert _run(hits) == [HUMAN, HUMAN, HUMAN]


def test_honeypot_then_everything_within_the_taint_is_bot():
    hits = [hit(code="H", slot="honeypot", at_ms=LATER), hit(code="A", at_ms=LATER + 120_000),
            hit(code="B", at_ms=LATER + 400_000)]
    assert _run(hits) == [bot("honeypot"), bot("after_honeypot"), HUMAN]


def test_unnamed_scanner_on_delivery_caught_by_honeypot_burst_and_speed_then_person_later_is_human():
    hits = [hit(code="A", at_ms=T0 + 900), hit(code="H", slot="honeypot", at_ms=T0 + 2_500),
            hit(code="B", at_ms=T0 + 2_700), hit(code="A", at_ms=T0 + 400_000)]
    assert _run(hits) == [bot("too_fast"), bot("honeypot"), bot("after_honeypot"), HUMAN]


def test_request_named_scanner_hits_do_not_turn_a_nearby_person_into_a_burst():
    hits = [hit(code="A", ip="148.163.140.2", at_ms=LATER), hit(code="B", at_ms=LATER + 300)]
    assert _run(hits) == [bot("security_scanner:proofpoint"), HUMAN]
