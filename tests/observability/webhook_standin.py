"""A local stand-in for a Slack incoming webhook: records posts, fails on demand."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.observability.http_standin import QuietHandler, StandinServer


@dataclass
class WebhookState:
    """Posts received (in order) and failures still to serve before answering "ok"."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, times: int, status: int = 500, retry_after: str | None = None) -> None:
        """Answer the next `times` posts with `status` (and Retry-After when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.failures.extend([(status, headers)] * times)


class WebhookHandler(QuietHandler):
    """POST <any path> with a JSON body; 200 "ok" as Slack answers, 400 for a bad payload."""

    def do_POST(self) -> None:
        state: WebhookState = self.server.state  # type: ignore[attr-defined]
        body = self.body()
        with state.lock:
            state.attempts += 1
            failure = state.failures.pop(0) if state.failures else None
        if failure:
            status, headers = failure
            return self.reply(status, b"rate_limited" if status == 429 else b"rollup_error", headers)
        try:
            payload = json.loads(body)
        except ValueError:
            return self.reply(400, b"invalid_payload")
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json" or "text" not in payload:
            return self.reply(400, b"invalid_payload")
        with state.lock:
            state.posts.append(payload)
        self.reply(200, b"ok", {"Content-Type": "text/plain"})


def start_webhook_standin() -> tuple[StandinServer, WebhookState]:
    """A running stand-in and its recorded state; call server.stop() when done."""
    state = WebhookState()
    return StandinServer(WebhookHandler, state).start(), state
