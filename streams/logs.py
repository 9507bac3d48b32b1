"""Structured logs for every process: one JSON object per line on stderr, with context.

Context (tenant, lead_id, event_id, agent) is carried in a ContextVar, so each asyncio
task sees only the fields its own `with log_context(...)` blocks set.
"""
from __future__ import annotations

import json
import logging
import logging.config
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any, Iterator, Mapping

CONTEXT_FIELDS = ("tenant", "lead_id", "event_id", "agent")

# Chatty at INFO (rebalances, fetcher state, every service start; httpx logs each request URL,
# and a webhook URL is a secret); a warning still shows.
NOISY_LOGGERS = ("aiokafka", "kafka", "faust", "mode", "httpx", "httpcore")
# Kept at INFO under a quietened parent: the worker's "Ready" line is the one worth seeing.
KEPT_LOGGERS = ("faust.worker",)
# Uvicorn gives these their own plain-text handlers; hand them back to the root's.
HANDED_BACK_LOGGERS = ("uvicorn", "uvicorn.access")

_context: ContextVar[Mapping[str, Any]] = ContextVar("leadstream_log_context", default={})

# Attributes every LogRecord has; anything else on a record came from `extra=`.
# uvicorn's color_message repeats msg with terminal colour codes.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName",
                                                                 "color_message"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (this task only)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    """The context fields in force here."""
    return dict(_context.get())


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Context fields, then the call's `extra=` fields (which win), for one record."""
    fields = dict(_context.get())
    fields.update((k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRS)
    ordered = {k: fields.pop(k) for k in CONTEXT_FIELDS if k in fields}
    return {**ordered, **fields}


def iso_utc(created: float) -> str:
    """A record's time as ISO 8601 UTC with milliseconds, e.g. 2025-01-31T12:00:00.123Z."""
    return datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, process: str = "") -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": iso_utc(record.created), "level": record.levelname, "logger": record.name,
            "process": self.process_name, "pid": record.process, "msg": record.getMessage(),
        }
        entry.update(record_fields(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: a stray object in extra= must not turn a log line into an exception
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal: time level process logger: msg key=value..."""

    def __init__(self, process: str = "") -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in record_fields(record).items())
        line = (f"{iso_utc(record.created)} {record.levelname:<7} {self.process_name}[{record.process}] "
                f"{record.name}: {record.getMessage()}" + (f" {fields}" if fields else ""))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def faust_logging_config(process: str, fmt: str = "json", level: int | str = logging.INFO) -> dict[str, Any]:
    """A logging.config.dictConfig dict for faust.App(logging_config=...) and configure_logging."""
    if fmt not in FORMATTERS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATTERS)}; set LEADSTREAM_LOG_FORMAT")
    return {
        "version": 1,
        # Loggers created at import time (leadstream.batch, ...) must keep working.
        "disable_existing_loggers": False,
        "formatters": {"leadstream": {"()": f"{__name__}.{FORMATTERS[fmt].__name__}", "process": process}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "leadstream"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {**{name: {"level": "WARNING"} for name in NOISY_LOGGERS},
                    **{name: {"level": "INFO"} for name in KEPT_LOGGERS},
                    **{name: {"handlers": [], "propagate": True} for name in HANDED_BACK_LOGGERS}},
    }


def configure_logging(process: str, fmt: str = "json", level: int | str = logging.INFO,
                      stream: IO[str] | None = None) -> None:
    """Send the root logger to stderr (or `stream`) in `fmt`, tagged with `process`, noisy libraries quietened."""
    config = faust_logging_config(process, fmt, level)
    if stream is not None:
        config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)


def quiet_noisy_loggers() -> None:
    """Lower Kafka/Faust internals to WARNING (use after something else set logging up)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in KEPT_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)

