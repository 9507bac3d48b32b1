"""python -m runtime.prune_once [--at ISO]: prune cold leads once, as if it were that instant."""
from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime

from agents.hygiene import prune
from runtime.deps import build
from streams.settings import get_settings


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m runtime.prune_once", description=__doc__)
    p.add_argument("--at", help="ISO instant (default: now)")
    a = p.parse_args()
    now_ms = int(datetime.fromisoformat(a.at.replace("Z", "+00:00")).timestamp() * 1000) if a.at else int(time.time() * 1000)
    deps = build(get_settings())
    print(f"unsubscribed as inactive: {asyncio.run(prune(deps, now_ms))}")


if __name__ == "__main__":
    main()
