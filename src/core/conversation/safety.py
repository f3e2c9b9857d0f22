"""Input hygiene: PII redaction for anything logged, and a heuristic that flags retrieved passages that
try to give the model instructions (prompt injection)."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
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
