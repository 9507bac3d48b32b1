"""Browser fixtures: Playwright driving Debian's Chromium against the dashboard the running
API serves under /app (./dev builds it). Each role signs in through the sign-in page."""
from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.conftest import api, book, ch, keys, rds, settings, supervisor  # noqa: F401  (fixtures)
from streams.settings import ROOT

SHOTS = ROOT / "docs" / "screenshots"


def demo_people() -> dict[str, tuple[str, str]]:
    """role -> (email, password) of the demo people (tenants/demo.yaml)."""
    doc = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    out = {}
    for g in doc["grants"]:
        person = doc["people"][g["person"]]
        key = g["role"] if g.get("tenant", "jobsnearby") == "jobsnearby" else f"{g['role']}@{g['tenant']}"
        out.setdefault(key, (g["person"], person["demo_password"]))
    return out


@pytest.fixture(scope="session")
def people() -> dict[str, tuple[str, str]]:
    return demo_people()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def app_url(settings) -> str:
    r = httpx.get(f"{settings.api_url}/app/", timeout=10)
    assert r.status_code == 200 and '<div id="root">' in r.text, f"the dashboard is not served: {r.status_code} {r.text[:200]}"
    return f"{settings.api_url}/app"


class Signed:
    """A browser context signed in as one person, with the page and console errors."""

    def __init__(self, browser, app_url: str, email: str, password: str, width: int = 1280, height: int = 900):
        self.app_url = app_url
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if email:
            sign_in(self.page, app_url, email, password)

    def go(self, path: str):
        self.page.goto(self.app_url + path)
        return self.page

    def nav(self) -> list[str]:
        self.page.get_by_test_id("person-menu").wait_for()
        return [x.inner_text().strip() for x in self.page.locator("[data-testid^=nav-]").all()]

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=path, animations="disabled")  # transitions shown finished
        return path

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.context.cookies()}

    def close(self):
        self.context.close()


def sign_in(page, app_url: str, email: str, password: str) -> None:
    page.goto(app_url + "/")
    page.locator("input[autocomplete=username]").fill(email)
    page.locator("input[autocomplete=current-password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("person-menu").wait_for(timeout=20_000)


@pytest.fixture
def as_role(browser, app_url, people):
    """as_role("analyst") -> a Signed context for that demo person; closed after the test."""
    opened: list[Signed] = []

    def open_as(role: str, **size) -> Signed:
        email, password = people[role]
        s = Signed(browser, app_url, email, password, **size)
        opened.append(s)
        return s
    yield open_as
    for s in opened:
        assert not s.errors, f"uncaught errors in the page: {s.errors}"
        s.close()
