"""The provider stand-ins as ./dev runs them (`python -m stack.standins.providers`, a process of
its own): every one of the nine providers takes a message from its adapter. An in-process
stand-in once passed while the process answered 500 to Mailgun, Postmark and the SMS gateways
(their modules imported a second copy of the stand-in's app keys)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from channels.base import EmailMessage, SmsMessage
from channels.registry import EMAIL_PROVIDERS, SMS_PROVIDERS, build_providers
from scaling.drill import free_port
from streams.settings import ROOT, Settings


@pytest.fixture(scope="module")
def standin_url():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "stack.standins.providers", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/webhook-keys", timeout=2).raise_for_status()
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


async def test_every_provider_of_the_standin_process_takes_a_message(standin_url):
    # every provider at this stand-in, even where the environment routes one elsewhere (./dev routes
    # Mailgun through Toxiproxy to its own stand-in: stack/netem.py)
    providers = build_providers(Settings(providers_url=standin_url, mailgun_url=""))
    mail = EmailMessage("p1", "alerts@jobsnearby.example", "Jobs Nearby", "lead@example.com", "Hi", "<p>Hi</p>",
                        "Hi", {"List-Id": "<daily-jobs.jobsnearby.example>"})
    sms = SmsMessage("p2", "+15005550001", "+14155550123", "3 new jobs near you. Reply STOP to opt out")
    outcomes = {}
    for name in EMAIL_PROVIDERS + SMS_PROVIDERS:
        if name == "smtp":
            continue
        [outcomes[name]] = await providers[name].send_many([mail if name in EMAIL_PROVIDERS else sms])
    for p in providers.values():
        await p.close()
    assert {n: (o.ok, o.error) for n, o in outcomes.items()} == {n: (True, None) for n in outcomes}
    counts = {n: httpx.get(f"{standin_url}/control/{n}").json()["accepted"] for n in outcomes}
    assert counts == {n: 1 for n in outcomes}
