"""Input hygiene: a heuristic that flags retrieved passages that try to give the model instructions (prompt
injection). (What reaches the logs is redacted by the log handlers: src/adapters/logs.py.)"""

from __future__ import annotations

import re

_INJECTION = re.compile(
    r"ignore (all |any |the )?(previous|prior|above) (instructions|prompts?|messages)"
    r"|disregard (the |all )?(system|previous|above)"
    r"|you are now\b|new instructions\s*:|system prompt|<\s*/?\s*system\s*>"
    r"|do not tell the user|reveal (your|the) (instructions|prompt)",
    re.IGNORECASE)


def looks_like_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None
