"""Token counting: tiktoken for OpenAI models when its encoding files are available offline
(TIKTOKEN_CACHE_DIR; Keel never downloads them at run time), else an estimate of 1 token per 4 characters,
which is what other providers get too."""

from __future__ import annotations

import logging
import os
from functools import lru_cache

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _encoding(model: str):
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        return None  # tiktoken would try to download the encoding: not on an offline machine
    try:
        import tiktoken

        return tiktoken.encoding_for_model(model)
    except Exception:
        log.info("no tiktoken encoding for %s; estimating tokens", model)
        return None


class TiktokenCounter:
    def count(self, model: str, text: str) -> int:
        if not text:
            return 0
        encoding = _encoding(model) if model.startswith(("gpt-", "o1", "o3", "o4")) else None
        if encoding is not None:
            return len(encoding.encode(text, disallowed_special=()))
        return max(1, (len(text) + 3) // 4)
