"""Signing in as the demo people of tenants/demo.yaml, for the API tests (a real session:
cookie plus the X-CSRF-Token header that writes need)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import yaml

from streams.settings import ROOT

PLATFORM_ADMIN = "admin@leadstream.local"
BRAND_ADMIN = "brand@jobsnearby.example"  # jobsnearby
ANALYST = "analyst@jobsnearby.example"  # jobsnearby
PARTNER = "partner@ziprecruiter.example"  # jobsnearby, partner ziprecruiter
OTHER_BRAND_ADMIN = "brand@hireflow.example"  # hireflow only


def demo_password(email: str) -> str:
    doc = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
    return doc["people"][email]["demo_password"]


@contextmanager
def signed_in(api_url: str, email: str) -> Iterator[httpx.Client]:
    """A client signed in as this demo person, closed on the way out."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        yield _sign_in(client, email)


def _sign_in(client: httpx.Client, email: str) -> httpx.Client:
    r = client.post("/v1/session", json={"email": email, "password": demo_password(email)})
    assert r.status_code == 200, f"sign-in of {email}: {r.status_code} {r.text}"
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    cookies = dict(r.cookies)
    client.cookies.clear()
    for name, value in cookies.items():  # sent back as plain cookies, also when marked Secure
        client.cookies.set(name, value)
    return client
