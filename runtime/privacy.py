"""Privacy tasks: python -m runtime.privacy rotate-kek | audit TENANT WHO [--also TEXT ...]

audit        every clear trace of one person (an address, a lead id or a do-not-contact entry)
             left in Kafka, Redis and ClickHouse; exit 1 when one is found (runtime/privacy_audit.py)

rotate-kek   every lead's data key rewrapped by the current KEK (the first of LEADSTREAM_KEK_RING),
             written to privacy.keys first, while the platform runs. Rotation, without downtime:
               1. LEADSTREAM_KEK_RING="new:<base64>,old:<base64>" on every process (restart them)
               2. ./dev privacy rotate-kek            (prints how many keys were rewrapped)
               3. LEADSTREAM_KEK_RING="new:<base64>"  (the old KEK can be destroyed)
"""
from __future__ import annotations

import asyncio
import sys
import time

import orjson

from runtime.deps import build
from runtime.privacy_audit import audit, report
from streams.settings import get_settings

USAGE = __doc__


async def rotate_kek() -> dict:
    deps = build(get_settings())
    try:
        keys = deps.data_keys()
        started = time.monotonic()
        out = await keys.rotate(int(time.time() * 1000))
        return {"kek": keys.current, "rewrapped": out.rewrapped, "already_current": out.already_current,
                "changed_meanwhile": out.changed_meanwhile, "seconds": round(time.monotonic() - started, 1)}
    finally:
        await deps.redis.aclose()
        deps.producer.close()


async def _audit(tenant: str, who: str, also: list[str]):
    deps = build(get_settings())
    try:
        return await audit(deps, tenant, who, also) if tenant in deps.tenants.tenants else None
    finally:
        await deps.redis.aclose()
        deps.producer.close()


def run_audit(argv: list[str]) -> int:
    also = [argv[i + 1] for i, a in enumerate(argv) if a == "--also" and i + 1 < len(argv)]
    plain = [a for i, a in enumerate(argv) if a != "--also" and (i == 0 or argv[i - 1] != "--also")]
    if len(plain) != 2:
        print("usage: audit TENANT EMAIL|PHONE|LEAD_ID|CONTACT_HASH [--also TEXT ...]")
        return 2
    found = asyncio.run(_audit(plain[0], plain[1], also))
    if found is None:
        print(f"unknown tenant {plain[0]!r}")
        return 2
    print("\n".join(report(found)))
    print(orjson.dumps({"lead_id": found.lead_id, "clean": found.clean, "kafka_clear": found.topics_clear,
                        "kafka_lead_id_only": found.topics_keyed, "redis": len(found.redis),
                        "clickhouse": [f"{t}.{c}" for t, c, _ in found.clickhouse]}).decode())
    return 0 if found.clean else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["audit"]:
        return run_audit(argv[1:])
    if argv[:1] == ["rotate-kek"]:
        print(orjson.dumps(asyncio.run(rotate_kek())).decode())
        return 0
    print(USAGE)
    return 0 if argv[:1] in ([], ["help"]) else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
