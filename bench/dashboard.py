"""Time to interactive of every dashboard page, in Chromium, on the running stack's data.

./dev bench dashboard [--runs 5]

For each page a fresh browser context (cold cache, as a first visit) signs in through the
API, opens the page and waits until its main content is on screen with its data (the table,
the cards, the form: not the loading state). value = the slowest page's median in ms;
Each page is opened once untimed first (the server's code paths and connection pools warm, as on
a platform that has been running: the first visit measured is the browser's). baseline = the median time to an interactive sign-in form (the bundle loaded and rendered,
no data asked for), on the same server in the same run; the issue's target is < 1,000 ms per
page. Also printed: each page reloaded with the bundle cached, and reached in the app from
another page through its navigation link (how an operator mostly moves). The platform is started if it is not running (./dev demo first for the demo's data).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time

import httpx

from bench._common import emit, say
from stack.demo_logins import demo_logins
from streams.settings import get_settings

# page -> the selector that says its content (with data) is shown
PAGES = {
    "/overview": "[data-testid=kpi-leads_submitted] [data-testid=kpi-value]",
    "/analytics": "[data-testid=breakdown-table]",
    "/lists": "[data-testid=lists-table]",
    "/lists/daily-jobs": "[data-testid=field-send_time]",
    "/triggers": "[data-testid^=trigger-]",
    "/experiments": "[data-testid=arms-table]",
    "/leads?email={lead}": "[data-testid=timeline]",
    "/messages": "[data-testid=messages-table]",
    "/accounting": "[data-testid=accounting-table]",
    "/fleet": "[data-testid=agent-triggers]",
    "/people": "[data-testid=people-table]",
    "/keys": "[data-testid=keys-table]",
    "/audit": "[data-testid=audit-table]",
}


def _sign_in_cookies(api_url: str, email: str, password: str) -> list[dict]:
    r = httpx.post(f"{api_url}/v1/session", json={"email": email, "password": password}, timeout=30)
    r.raise_for_status()
    host = httpx.URL(api_url).host
    return [{"name": k, "value": v, "domain": host, "path": "/"} for k, v in r.cookies.items()]


# checked at every animation frame: a locator's wait_for polls ever more slowly (up to every
# 500 ms), which would add up to half a second to a page that takes a moment
_SHOWN = """sel => { const e = document.querySelector(sel);
                 return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden"; }"""


def _until(page, selector: str, go) -> float:
    t0 = time.perf_counter()
    go()
    page.wait_for_function(_SHOWN, arg=selector, polling="raf", timeout=30_000)
    return (time.perf_counter() - t0) * 1000


def _timed(browser, url: str, selector: str, cookies: list[dict], nav: str | None = None) -> tuple[float, ...]:
    """(cold: a first visit, warm: a reload with the bundle cached, in-app: from another page
    by its navigation link) in ms; in-app is 0 for pages not in the navigation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if cookies:
        context.add_cookies(cookies)
    page = context.new_page()
    try:
        cold = _until(page, selector, lambda: page.goto(url, wait_until="commit"))
        warm = _until(page, selector, lambda: page.reload(wait_until="commit"))
        inapp = 0.0
        if nav:
            other = "nav-overview" if nav != "nav-overview" else "nav-lists"
            page.get_by_test_id(other).click()
            page.wait_for_function(f"() => !location.pathname.endsWith('/{nav[4:]}')")
            page.get_by_test_id(other).and_(page.locator("[data-active]")).wait_for()
            inapp = _until(page, selector, lambda: page.get_by_test_id(nav).click())
        return cold, warm, inapp
    finally:
        context.close()


def _some_lead(api_url: str, cookies: list[dict]) -> str:
    jar = {c["name"]: c["value"] for c in cookies}
    rows = httpx.get(f"{api_url}/v1/tenants/jobsnearby/messages?limit=20&channel=email", cookies=jar, timeout=30)
    rows.raise_for_status()
    found = [m["to"] for m in rows.json()["messages"] if m.get("to")]
    if not found:
        sys.exit("no email sends in jobsnearby yet: run ./dev demo first, then ./dev bench dashboard")
    return found[0]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    s = get_settings()
    from stack.__main__ import cmd_up
    cmd_up(quiet=True)
    logins = {role: (email, pw) for role, email, pw in demo_logins(s.tenants_file)}
    from playwright.sync_api import sync_playwright
    app = f"{s.api_url}/app"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     args=["--no-sandbox"])
        admin = _sign_in_cookies(s.api_url, *logins["platform_admin"])
        brand = _sign_in_cookies(s.api_url, *logins["brand_admin"])
        lead = _some_lead(s.api_url, brand)
        sign_in = f"{app}/sign-in"
        _timed(browser, sign_in, "input[autocomplete=username]", [])  # warm the server
        base = statistics.median(_timed(browser, sign_in, "input[autocomplete=username]", [])[0]
                                 for _ in range(args.runs))
        say(f"sign-in form interactive: {base:.0f} ms cold (median of {args.runs})")
        cold, warm, inapp = {}, {}, {}
        for path, selector in PAGES.items():
            name = path.split("?")[0]
            nav = f"nav-{name[1:]}" if name.count("/") == 1 and "?" not in path else None
            url, who = f"{app}{path.format(lead=lead)}", admin if name == "/fleet" else brand
            _timed(browser, url, selector, who)  # warm the server's path (a first visit is the browser's, not the API's)
            runs = [_timed(browser, url, selector, who, nav) for _ in range(args.runs)]
            cold[name], warm[name] = (round(statistics.median(r[i] for r in runs)) for i in (0, 1))
            if nav:
                inapp[name] = round(statistics.median(r[2] for r in runs))
            say(f"{name:<18} cold {cold[name]:>5} ms   reload {warm[name]:>5} ms   in-app {inapp.get(name, '-'):>5} ms")
        browser.close()
    worst = max(cold, key=cold.get)
    emit({"bench": "dashboard", "value": cold[worst], "unit": "ms to interactive, slowest page, first visit (median)",
          "baseline": round(base), "ratio": round(cold[worst] / base, 2), "slowest": worst, "target_ms": 1000,
          "slowest_reload_ms": max(warm.values()), "slowest_in_app_ms": max(inapp.values()),
          "cold": cold, "reload": warm, "in_app": inapp, "runs": args.runs})


if __name__ == "__main__":
    main(sys.argv[1:])
