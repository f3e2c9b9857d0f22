"""Logs: JSON lines (KEEL_LOG_FORMAT=json, the default) or a readable line (console), each carrying the
context it was written in (src/ports/context.py: request id, trace id, operation, user and workspace ids),
which jobs carry into the workers. A filter on every handler replaces emails and card-like digit runs in each record,
whatever code wrote it: personal data never reaches a log."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from src.ports.context import current_context

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def redact(text: str) -> str:
    """Emails and card-like digit runs replaced, so logs never carry them."""
    return _CARD.sub("[card]", _EMAIL.sub("[email]", text))


class RedactingFilter(logging.Filter):
    """Installed on the log handlers: every record's message is redacted before it is written, and the
    record gets the current context's ids as attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        record.keel_context = current_context()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
            **{key: value for key, value in getattr(record, "keel_context", {}).items() if key != "traceparent"},
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s")

    def format(self, record: logging.LogRecord) -> str:
        context = {key: value for key, value in getattr(record, "keel_context", {}).items() if key != "traceparent"}
        record.context = (" [" + " ".join(f"{key}={value}" for key, value in context.items()) + "]") if context else ""
        text = super().format(record)
        return redact(text) if record.exc_info else text


def configure_logging(level: str, fmt: str) -> None:
    """The root logger's handlers (Dramatiq's pipe in a worker, stderr otherwise) write `fmt` lines, redacted,
    with the context; uvicorn's and Dramatiq's loggers go through them too."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    root.setLevel(level.upper())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
