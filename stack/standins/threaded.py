"""What the aiohttp stand-ins share: serving on a thread of their own (tests start them
in-process) and being steered to misbehave."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from dataclasses import dataclass
from typing import Callable

from aiohttp import web


def serve_in_thread(app: web.Application, host: str, port: int, name: str) -> tuple[str, Callable[[], None]]:
    """Serve app on its own thread and loop; returns (base url, stop)."""
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[int] = concurrent.futures.Future()
    thread = threading.Thread(target=_run, args=(loop, app, host, port, ready), name=name, daemon=True)
    thread.start()
    bound = ready.result(timeout=10)

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    return f"http://{host}:{bound}", stop


def _run(loop: asyncio.AbstractEventLoop, app: web.Application, host: str, port: int,
         ready: concurrent.futures.Future[int]) -> None:
    """Thread body: serve until the loop is stopped, then clean up."""
    asyncio.set_event_loop(loop)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    try:
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, host, port).start())
    except BaseException as exc:
        ready.set_exception(exc)
        loop.close()
        return
    ready.set_result(runner.addresses[0][1])
    loop.run_forever()
    loop.run_until_complete(runner.cleanup())
    loop.run_until_complete(cancel_all())
    loop.close()


async def cancel_all() -> None:
    """Cancel handlers still running (a "slow" answer) so the loop closes cleanly."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Steering:
    """How a stand-in should answer, as tests steer it: a mode, optionally for the next N only."""

    mode: str = "ok"
    remaining: int | None = None  # misbehave this many more times; None = until told otherwise
    retry_after_s: float = 1.0
    delay_s: float = 2.0
    requests: int = 0

    def next_mode(self) -> str:
        """The mode for this request, counting down `fail_next`."""
        mode = self.mode
        if mode != "ok" and self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.mode, self.remaining = "ok", None
        return mode
