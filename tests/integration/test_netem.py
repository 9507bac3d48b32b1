"""The network to a provider stand-in, slowed on demand (Toxiproxy, stack/netem.py): the path the
chaos drill slows. The platform's processes reach the Mailgun stand-in through it; slowed, the
adapter's messages take longer and still arrive, each once; cleared, the toxics are gone."""
from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from channels.base import EmailMessage
from channels.mailgun import MailgunMailer
from scaling.client import SupervisorClient
from stack import netem
from stack.standins.providers import DEFAULT_CREDENTIALS


def _mail(send_id: str) -> EmailMessage:
    return EmailMessage(send_id=send_id, from_addr="alerts@jobs.example", from_name="Jobs Team",
                        to_addr=f"{send_id}@example.com", subject="3 new jobs", html="<p>" + "x" * 20_000 + "</p>",
                        text="jobs", headers={}, tags={"send_id": send_id, "tenant": "demo"})


def _arrived(settings, send_ids: set[str]) -> list[str]:
    got = httpx.get(f"{settings.providers_url}/sent/mailgun", timeout=60).json()
    return [m["variables"]["send_id"] for m in got if m.get("variables", {}).get("send_id") in send_ids]


async def _send(url: str, send_ids: list[str]) -> list:
    mailer = MailgunMailer(DEFAULT_CREDENTIALS["mailgun"]["api_key"], base_url=url)
    try:
        return await mailer.send_many([_mail(i) for i in send_ids])
    finally:
        await mailer.close()


def test_the_platforms_workers_reach_the_mailgun_standin_through_the_proxy(settings):
    proxy_url = netem.platform_env()["LEADSTREAM_MAILGUN_URL"]
    agents = SupervisorClient(settings.supervisor_port).status()["agents"]
    [sender] = [w for w in agents["sender_bulk"]["workers"] if w["state"] == "running"][:1]
    with open(f"/proc/{sender['pid']}/environ", "rb") as f:
        env = dict(part.split(b"=", 1) for part in f.read().split(b"\0") if b"=" in part)
    assert env[b"LEADSTREAM_MAILGUN_URL"].decode() == proxy_url
    # and the proxy forwards to the stand-in
    ids = [f"netem{uuid.uuid4().hex[:12]}"]
    outcomes = asyncio.run(_send(proxy_url, ids))
    assert [o.ok for o in outcomes] == [True] and _arrived(settings, set(ids)) == ids


def test_slowed_the_messages_take_the_latency_and_still_arrive_once_then_cleared(settings):
    proxy_url = netem.platform_env()["LEADSTREAM_MAILGUN_URL"]
    ids = [f"netem{uuid.uuid4().hex[:12]}" for _ in range(3)]
    netem.slow(settings, "mailgun", latency_ms=300, jitter_ms=0, kb_per_s=64)
    try:
        assert {t["name"] for t in netem.toxics(settings, "mailgun")} == {
            "latency_upstream", "latency_downstream", "bandwidth_upstream", "bandwidth_downstream"}
        t0 = time.monotonic()
        outcomes = asyncio.run(_send(proxy_url, ids))
        took = time.monotonic() - t0
    finally:
        netem.clear(settings, "mailgun")
    assert all(o.ok for o in outcomes)
    assert sorted(_arrived(settings, set(ids))) == sorted(ids)  # each once
    assert took >= 0.6  # a lower bound: the request and its answer each waited 300 ms at least
    assert netem.toxics(settings, "mailgun") == []
