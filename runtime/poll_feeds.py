"""python -m runtime.poll_feeds: poll every tenant's job feeds once, now."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from agents.jobs import FeedFetcher, poll_feeds
from runtime.deps import build
from streams.settings import get_settings


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m runtime.poll_feeds", description=__doc__)
    ap.parse_args(argv)
    deps = build(get_settings())

    async def once() -> dict:
        async with FeedFetcher(timeout_s=30.0) as fetcher:
            done = await poll_feeds(deps, fetcher, int(time.time() * 1000), force=True)
        deps.producer.close()
        return done
    for feed, what in asyncio.run(once()).items():
        print(f"{feed}: {what}")


if __name__ == "__main__":
    main(sys.argv[1:])
