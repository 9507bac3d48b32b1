"""python -m runtime.plan_once --at 2026-11-27T14:00:00Z: one planning pass at that instant."""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from agents.planner import plan_due
from runtime.deps import build
from streams.settings import get_settings


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m runtime.plan_once")
    ap.add_argument("--at", required=True, help="the instant to plan for, ISO 8601 (e.g. 2026-11-27T14:00:00Z)")
    args = ap.parse_args(argv)
    try:
        at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
    except ValueError:
        sys.exit(f"--at {args.at!r} is not an ISO 8601 instant, e.g. 2026-11-27T14:00:00Z")
    if at.tzinfo is None:
        sys.exit("--at needs a timezone, e.g. 2026-11-27T14:00:00Z or 2026-11-27T09:00:00-05:00")
    deps = build(get_settings())

    async def once() -> int:
        n = await plan_due(deps, int(at.timestamp() * 1000))
        deps.producer.close()
        return n
    print(f"planned {asyncio.run(once())} sends due at or before {at.isoformat()}")


if __name__ == "__main__":
    main(sys.argv[1:])
