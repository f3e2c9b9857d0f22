"""Input hygiene: PII redaction for anything logged, and a heuristic that flags retrieved passages that
try to give the model instructions (prompt injection)."""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_INJECTION = re.compile(
    r"ignore (all |any |the )?(previous|prior|above) (instructions|prompts?|messages)"
    r"|disregard (the |all )?(system|previous|above)"
    r"|you are now\b|new instructions\s*:|system prompt|<\s*/?\s*system\s*>"
    r"|do not tell the user|reveal (your|the) (instructions|prompt)",
    re.IGNORECASE)


def redact(text: str) -> str:
    """Emails and card-like digit runs replaced, so logs never carry them."""
    return _CARD.sub("[card]", _EMAIL.sub("[email]", text))


def looks_like_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None


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
