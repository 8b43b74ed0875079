"""Log context (the pipeline and build a record is about) and the JSON log format.

``log_context(pipeline_id=…, build_id=…)`` sets ids for everything logged inside it, in this
thread or task only (contextvars: a Dramatiq worker thread or a web request each see their own).
``TROY_LOG_FORMAT=json`` puts :class:`JsonFormatter` on the console handler: one JSON object per
line, with ``pipeline_id``/``build_id`` when known, for log shippers that index fields.

A small stdlib formatter rather than python-json-logger: the record has a handful of fixed
fields and this avoids one more dependency to pin and audit.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import contextvars
from datetime import UTC, datetime
import json
import logging
from typing import Any

CONTEXT_FIELDS = ("pipeline_id", "build_id")

_log_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("troy_log_context", default={})  # noqa: B039 (never mutated: each set() gets a new dict)


def current_log_context() -> dict[str, str]:
    return dict(_log_context.get())


def log_context_set(**ids: Any) -> contextvars.Token:
    """Add ids to the current context (None values are ignored); undo with :func:`log_context_reset`."""
    known = {name: str(value) for name, value in ids.items() if value is not None and value != ""}
    unknown = set(known) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    return _log_context.set({**_log_context.get(), **known})


def log_context_reset(token: contextvars.Token) -> None:
    _log_context.reset(token)


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """``with log_context(pipeline_id=p.id):`` — records logged inside carry the ids."""
    token = log_context_set(**ids)
    try:
        yield
    finally:
        log_context_reset(token)


# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is kept.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the log context,
    ``extra=`` fields, and the traceback text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_log_context.get())
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
