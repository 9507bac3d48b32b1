"""Error reporting to Sentry, with personal data stripped before anything leaves the process."""
from __future__ import annotations

import logging
import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from streams.logs import current_context

REDACTED = "[redacted]"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# International numbers (+44 20 7946 0958) and separated national ones ((555) 123-4567);
# bare digit runs are left alone because ids, offsets and epoch times look the same.
PHONE = re.compile(r"\+\d[\d\s().-]{6,}\d|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
# Low-cardinality context fields become searchable tags; the rest go into a context block.
TAG_FIELDS = ("tenant", "agent")


def redact_text(text: str) -> str:
    """The text with email addresses and phone numbers replaced by [redacted]."""
    return PHONE.sub(REDACTED, EMAIL.sub(REDACTED, text))


def redact(value: Any) -> Any:
    """A copy of a serialised event value with personal data redacted in every string."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Attach the log context, then redact personal data anywhere in the event."""
    context = current_context()
    if context:
        event.setdefault("contexts", {})["leadstream"] = context
        event.setdefault("tags", {}).update({k: str(context[k]) for k in TAG_FIELDS if k in context})
    # The whole event, not just message and extra: exception values, breadcrumbs and log
    # params carry the same strings, and Sentry sits outside GDPR erasure.
    return redact(event)


def init_sentry(dsn: str, environment: str, process: str, release: str | None = None) -> bool:
    """Start reporting errors (and ERROR log lines) to Sentry; False when no DSN is set."""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        before_send=before_send,
        send_default_pii=False,
        # Locals and request bodies hold whole lead payloads (names, addresses) that no
        # pattern can recognise, so they are never sent.
        include_local_variables=False,
        max_request_body_size="never",
    )
    # The global scope, so every thread and task of the process carries the tag.
    sentry_sdk.get_global_scope().set_tag("process", process)
    return True
