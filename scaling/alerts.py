"""Operator alerts to a Slack-compatible incoming webhook: retried, de-duplicated, resolved.

Synchronous on purpose: the supervisor's loop calls it from a worker thread, and a failed
alert is logged, never raised, so alerting can never stop scaling.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import httpx

log = logging.getLogger("leadstream.alerts")

ICONS = {"critical": ":rotating_light:", "error": ":red_circle:", "warning": ":warning:",
         "info": ":information_source:"}
RESOLVED_ICON = ":white_check_mark:"
# Slack Block Kit limits; a block over them makes the whole message fail with invalid_blocks.
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000


@dataclass(frozen=True)
class Alert:
    """One alerting condition; `key` names it for de-duplication and resolving (default: name)."""

    name: str
    severity: str
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)


@dataclass
class _Firing:
    """An alert that was delivered and has not been resolved yet."""

    alert: Alert
    first_sent_at: float
    last_sent_at: float


def escape(text: str) -> str:
    """Text safe inside Slack mrkdwn (&, < and > are control characters there)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Text cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detail_fields(details: Mapping[str, Any]) -> list[dict[str, str]]:
    """Block Kit fields for an alert's details, within Slack's count and size limits."""
    items = list(details.items())
    shown = items if len(items) <= MAX_FIELDS else items[: MAX_FIELDS - 1]
    fields = [{"type": "mrkdwn", "text": clip(f"*{escape(str(k))}*\n{escape(str(v))}", MAX_FIELD_CHARS)}
              for k, v in shown]
    if len(shown) < len(items):
        fields.append({"type": "mrkdwn", "text": f"_+{len(items) - len(shown)} more details_"})
    return fields


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The incoming-webhook JSON for a firing alert: `text` is the notification fallback."""
    title = f"[{alert.severity.upper()}] {alert.name}"
    icon = ICONS.get(alert.severity.lower(), ":bell:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(f"{icon} {title}", MAX_HEADER_CHARS),
                                    "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(escape(alert.summary), MAX_SECTION_CHARS)}},
    ]
    if alert.details:
        blocks.append({"type": "section", "fields": detail_fields(alert.details)})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"key `{escape(alert.key)}`"}]})
    return {"text": escape(f"{icon} {title}: {alert.summary}"), "blocks": blocks}


def resolved_payload(alert: Alert, firing_for_s: float) -> dict[str, Any]:
    """The incoming-webhook JSON saying a previously sent alert has cleared."""
    title = f"[RESOLVED] {alert.name}"
    after = f"Cleared after {format_duration(firing_for_s)}. Was: {alert.summary}"
    return {
        "text": escape(f"{RESOLVED_ICON} {title}: {alert.summary}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                        "text": clip(f"{RESOLVED_ICON} {title}", MAX_HEADER_CHARS)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(escape(after), MAX_SECTION_CHARS)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"key `{escape(alert.key)}`"}]},
        ],
    }


def format_duration(seconds: float) -> str:
    """A duration like 45s, 12m 5s or 3h 2m."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (Slack sends whole seconds); None if absent or a date."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def is_retryable(status: int) -> bool:
    """True for answers that may succeed later: rate limited or a server-side failure."""
    return status == 429 or status >= 500


class AlertSender:
    """Posts alerts to one incoming webhook; with no URL configured it sends nothing."""

    def __init__(self, url: str, timeout: float = 5.0, max_tries: int = 4, repeat_after_s: float = 3600.0,
                 *, backoff_s: float = 0.5, max_wait_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.repeat_after_s = repeat_after_s
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout) if url else None
        self._firing: dict[str, _Firing] = {}

    def firing(self) -> list[str]:
        """Keys of alerts delivered and not yet resolved."""
        return list(self._firing)

    def send(self, alert: Alert, now: float | None = None) -> bool:
        """Deliver `alert` unless the same key was sent within repeat_after_s; True if delivered.

        A change of severity is sent at once, so an escalation is never held back.
        """
        now = time.monotonic() if now is None else now
        if not self.url:
            return False
        previous = self._firing.get(alert.key)
        if (previous and previous.alert.severity == alert.severity
                and now - previous.last_sent_at < self.repeat_after_s):
            log.debug("alert %s already sent %.0fs ago", alert.key, now - previous.last_sent_at)
            return False
        if not self._deliver_safely(lambda: alert_payload(alert), alert.key):
            return False
        self._firing[alert.key] = _Firing(alert, previous.first_sent_at if previous else now, now)
        return True

    def resolve(self, key: str, now: float | None = None) -> bool:
        """Say that alert `key` has cleared, if it was sent; True if the message was delivered.

        Cheap when the key is not firing, so a caller may call it every tick for healthy keys;
        a resolve that fails to deliver stays pending and is retried on the next call.
        """
        now = time.monotonic() if now is None else now
        firing = self._firing.get(key)
        if firing is None or not self.url:
            return False
        if not self._deliver_safely(lambda: resolved_payload(firing.alert, now - firing.first_sent_at), key):
            return False
        del self._firing[key]
        return True

    def close(self) -> None:
        """Release the HTTP connection pool."""
        if self._client is not None:
            self._client.close()

    def _deliver_safely(self, build: Callable[[], dict[str, Any]], key: str) -> bool:
        """_deliver, with any unexpected error logged instead of raised into the caller's loop."""
        try:
            return self._deliver(build(), key)
        except Exception:
            log.exception("alert %s: unexpected error while sending", key)
            return False

    def _deliver(self, payload: dict[str, Any], key: str) -> bool:
        """POST with retries on 429/5xx/connection errors; True once the webhook accepts it."""
        assert self._client is not None
        reason, attempt = "", 0
        for attempt in range(1, self.max_tries + 1):
            retry_after = None
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                reason = f"HTTP {response.status_code} {response.text[:200]!r}"
                if not is_retryable(response.status_code):
                    break  # a bad payload or a revoked webhook will not get better by retrying
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == self.max_tries:
                break
            wait = retry_after if retry_after is not None else min(self.backoff_s * 2 ** (attempt - 1),
                                                                   self.max_wait_s)
            if wait > self.max_wait_s:
                reason += f"; Retry-After {wait:.0f}s is longer than the {self.max_wait_s:.0f}s we wait"
                break
            # The URL is a secret (it carries the webhook token), so it is never logged.
            log.warning("alert %s: try %d/%d failed (%s); retrying in %.1fs",
                        key, attempt, self.max_tries, reason, wait)
            self._sleep(wait)
        log.error("alert %s not delivered, gave up after %d tries: %s", key, attempt, reason)
        return False
