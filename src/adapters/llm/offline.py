"""The provider used when no model is configured: it answers from the retrieved passages by extraction —
the sentences that share most words with the question, each with its [n] citation — clearly labelled as
such, and streams word by word like a real model."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from src.ports.models import ChatRequest, Finished, StreamEvent, TextDelta, Usage

_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP_WORDS = ("the a an of to in and or is are was were be for on with by as at it this that what which how why "
               "who does do did from its their there")
_STOP = frozenset(_STOP_WORDS.split(" "))
# A real model's pace, roughly: without one the whole answer is produced while the answer's set-up is still
# committing and reaches the client as a single delta, which no model would do.
WORD_SECONDS = 0.01
LABEL = "Offline answer (no language model is configured on this server): quoted from your documents.\n\n"


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if word not in _STOP}


def extract(question: str, passages, limit: int = 3) -> str:
    wanted = _words(question)
    scored = []
    for number, passage in enumerate(passages, 1):
        for sentence in _SENTENCE.split(passage.text.strip()):
            overlap = len(wanted & _words(sentence))
            if overlap and len(sentence) > 20:
                scored.append((overlap, -number, sentence.strip(), number))
    if not scored:
        return LABEL + "No passage in this workspace's documents matches the question."
    best = sorted(scored, reverse=True)[:limit]
    return LABEL + "\n".join(f"- {sentence} [{number}]" for _, _, sentence, number in best)


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


class OfflineChat:
    name = "offline"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        question = request.messages[-1].content if request.messages else ""
        answer = extract(question, request.passages)
        for piece in re.findall(r"\S+\s*", answer):
            yield TextDelta(piece)
            await asyncio.sleep(WORD_SECONDS)
        sent = request.system + "".join(m.content for m in request.messages)
        yield Finished(Usage(_estimate(sent), _estimate(answer)), "end_turn")

    async def structured(self, request: ChatRequest, name: str, schema: dict[str, Any]) -> tuple[dict, Usage]:
        """Fills each string property with the first words of the last user message."""
        text = request.messages[-1].content if request.messages else ""
        lines = [line.split(":", 1)[-1] for line in text.splitlines() if line.startswith("user:")] or [text]
        words = " ".join(lines[0].split()[:6]) or "Conversation"
        answer = {key: words for key, spec in schema.get("properties", {}).items() if spec.get("type") == "string"}
        return answer, Usage(_estimate(text), _estimate(words))
