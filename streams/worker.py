"""A worker process running one agent: python -m streams.worker AGENT"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from streams.app import make_app
from streams.settings import get_settings
from streams.wiring import build

AGENTS = {"intake": "agents.intake", "intake_json": "agents.intake_json",
          "analytics": "agents.analytics"}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in AGENTS:
        sys.exit(f"usage: python -m streams.worker AGENT [faust options]; AGENT one of {', '.join(AGENTS)}")
    agent, rest = argv[0], argv[1:]
    settings = get_settings()
    app = make_app(agent, settings)
    importlib.import_module(AGENTS[agent]).register(app, build(settings))
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
