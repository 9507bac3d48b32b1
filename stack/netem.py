"""The network between the platform and a provider stand-in, slowed on demand: Toxiproxy
(Shopify's TCP proxy, built by ./dev) sits on that path and takes "toxics" over its HTTP API.

    netem.slow(s, "mailgun", latency_ms=400, jitter_ms=200, kb_per_s=16)   # both directions
    netem.clear(s, "mailgun")

The local stack starts Toxiproxy with the proxies below and points the platform's processes at
their listen ports (stack/__main__.child_env): the Mailgun stand-in is reached through
127.0.0.1:18031, so the chaos drill can slow it while the rest of the stack runs untouched.
"""
from __future__ import annotations

import json
from pathlib import Path

import httpx

from streams.settings import Settings

# name -> (listen port, the stand-in whose port it forwards to)
PROXIES = {"mailgun": 18031}


def proxy_config(s: Settings) -> list[dict]:
    upstream = s.providers_url.rsplit(":", 1)[1].split("/")[0]
    return [{"name": name, "listen": f"127.0.0.1:{port}", "upstream": f"127.0.0.1:{upstream}", "enabled": True}
            for name, port in PROXIES.items()]


def write_config(s: Settings, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(proxy_config(s), indent=2))


def platform_env() -> dict[str, str]:
    """What the platform's processes are told, so that their traffic takes the proxies."""
    return {"LEADSTREAM_MAILGUN_URL": f"http://127.0.0.1:{PROXIES['mailgun']}"}


def _api(s: Settings) -> str:
    return f"http://127.0.0.1:{s.netem_port}"


def slow(s: Settings, proxy: str, latency_ms: int, jitter_ms: int, kb_per_s: int) -> None:
    """Every byte through `proxy`, both ways, delayed and rate-limited until clear()."""
    clear(s, proxy)
    for stream in ("upstream", "downstream"):
        for kind, attrs in (("latency", {"latency": latency_ms, "jitter": jitter_ms}), ("bandwidth", {"rate": kb_per_s})):
            r = httpx.post(f"{_api(s)}/proxies/{proxy}/toxics", timeout=10,
                           json={"name": f"{kind}_{stream}", "type": kind, "stream": stream, "toxicity": 1.0,
                                 "attributes": attrs})
            r.raise_for_status()


def clear(s: Settings, proxy: str) -> None:
    """The proxy's toxics removed: the network as it was."""
    for toxic in httpx.get(f"{_api(s)}/proxies/{proxy}/toxics", timeout=10).json():
        httpx.delete(f"{_api(s)}/proxies/{proxy}/toxics/{toxic['name']}", timeout=10).raise_for_status()


def toxics(s: Settings, proxy: str) -> list[dict]:
    return httpx.get(f"{_api(s)}/proxies/{proxy}/toxics", timeout=10).json()
