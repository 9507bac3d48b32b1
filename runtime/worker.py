"""A worker process: python -m runtime.worker AGENT[,AGENT...]

One agent per process is the norm (each scales on its own consumer group); several agents
in one process (e.g. intake,analytics) suit small installs and the pipeline benchmark.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from agents import AGENTS
from runtime.deps import build
from runtime.orphan import watch_supervisor
from streams import metrics
from streams.app import make_app
from streams.gc_tuning import tune_for_streaming
from streams.logs import configure_logging
from streams.sentry import init_sentry
from streams.settings import get_settings


def main(argv: list[str]) -> None:
    agents = argv[0].split(",") if argv else []
    if not agents or any(a not in AGENTS for a in agents):
        sys.exit(f"usage: python -m runtime.worker AGENT[,AGENT] [faust options]; "
                 f"AGENT one of {', '.join(AGENTS)}")
    agent, rest = "-".join(agents), argv[1:]
    watch_supervisor()
    settings = get_settings()
    configure_logging(f"worker-{agent}", settings.log_format)
    init_sentry(settings.sentry_dsn, settings.sentry_environment, f"worker-{agent}")
    deps = build(settings)
    for a in agents:
        metrics.expose_agent(a)
    deps.config  # the configuration, read to its end before any agent processes a message
    tune_for_streaming()
    if len(agents) == 1 and AGENTS[agents[0]].endswith(":run"):  # a plain consumer loop, not Faust
        import asyncio
        module, _, fn = AGENTS[agents[0]].partition(":")
        metrics.serve(settings.metrics_port, settings.metrics_host)
        asyncio.run(getattr(importlib.import_module(module), fn)(deps))
        return
    app = make_app(agent, settings)
    for a in agents:
        module, _, fn = AGENTS[a].partition(":")
        getattr(importlib.import_module(module), fn or "register")(app, deps)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    ready_file = os.environ.get("LEADSTREAM_READY_FILE")
    if ready_file:
        @app.task
        async def announce_ready() -> None:
            # app tasks start once the worker has recovered and is about to process
            Path(ready_file).write_text(str(os.getpid()))
    sys.argv = [f"leadstream-{agent}", "worker", "-l", "info", "--without-web", *rest]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1:])
