"""The provider stand-ins for the adapter tests: one server per test module, reset to
well-behaved and empty before each test. Import the fixtures into a test module to use them."""
from __future__ import annotations

import httpx
import pytest

from stack.standins import providers

CREDS = providers.DEFAULT_CREDENTIALS


@pytest.fixture(scope="module")
def standin():
    url, stop = providers.start(0)
    yield url
    stop()


@pytest.fixture(scope="module")
def admin(standin):
    """One kept-alive client for steering and inspecting the stand-in."""
    with httpx.Client(base_url=standin) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh(admin):
    """Every test starts with well-behaved, empty stand-ins."""
    for provider in providers.PROVIDERS:
        admin.post(f"/control/{provider}", json={"mode": "ok"}).raise_for_status()
        admin.delete(f"/sent/{provider}").raise_for_status()


def control(admin: httpx.Client, provider: str, **settings) -> None:
    admin.post(f"/control/{provider}", json=settings).raise_for_status()


def sent(admin: httpx.Client, provider: str) -> list[dict]:
    return admin.get(f"/sent/{provider}").json()
