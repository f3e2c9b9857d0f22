"""Logs without personal data: a filter on every log handler replaces emails and card-like digit runs in
each record's message, whatever code wrote it."""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def redact(text: str) -> str:
    """Emails and card-like digit runs replaced, so logs never carry them."""
    return _CARD.sub("[card]", _EMAIL.sub("[email]", text))


class RedactingFilter(logging.Filter):
    """Installed on the log handlers: every record's message is redacted before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())
