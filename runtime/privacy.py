"""Privacy tasks: python -m runtime.privacy rotate-kek

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


def main(argv: list[str]) -> int:
    if argv[:1] == ["rotate-kek"]:
        print(orjson.dumps(asyncio.run(rotate_kek())).decode())
        return 0
    print(USAGE)
    return 0 if argv[:1] in ([], ["help"]) else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
