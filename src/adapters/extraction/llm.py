"""EntityExtractor on a chat model's native structured output (OpenAI json_schema, Anthropic forced tool
use), through the conversation module's provider port; each chunk's cost is reported with its extraction
(and recorded on the workspace's usage ledger). A chunk whose call fails or whose answer does not validate
falls back to the offline extractor, so ingestion never stalls on the model."""

from __future__ import annotations

import asyncio
import logging
from string import Template
from typing import Any

from src.core.conversation.budget import cost_usd
from src.ports.conversation import ChatMessage, ChatRequest, ModelRoute, PromptTemplate, ProviderError
from src.ports.graph import (
    ChunkExtraction,
    ChunkText,
    EntityExtractor,
    EntityMention,
    ExtractionCost,
    RelationMention,
)

log = logging.getLogger(__name__)
_TEXT = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["entities", "relations"],
    "properties": {
        "entities": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "type", "aliases"],
            "properties": {"name": _TEXT, "type": _TEXT, "aliases": {"type": "array", "items": _TEXT}}}},
        "relations": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["subject", "predicate", "object"],
            "properties": {"subject": _TEXT, "predicate": _TEXT, "object": _TEXT}}},
    },
}
MAX_ITEMS = 50


def parse_extraction(chunk: ChunkText, data: dict, cost: ExtractionCost | None = None) -> ChunkExtraction:
    """The model's answer as an extraction; ValueError when it does not fit the schema."""
    try:
        entities = tuple(EntityMention(str(e["name"])[:200], str(e["type"])[:40] or "term",
                                       tuple(str(a)[:200] for a in e["aliases"])[:10])
                         for e in data["entities"][:MAX_ITEMS] if str(e["name"]).strip())
        relations = tuple(RelationMention(str(r["subject"]), str(r["predicate"])[:80] or "related_to",
                                          str(r["object"])) for r in data["relations"][:MAX_ITEMS])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"the extraction does not fit the schema: {exc!r}") from None
    return ChunkExtraction(chunk.chunk_id, entities, relations, cost)


class LlmExtractor:
    name = "llm"

    def __init__(self, route: ModelRoute, template: PromptTemplate, fallback: EntityExtractor,
                 concurrency: int = 4, max_tokens: int = 1500) -> None:
        self._route = route
        self._template = template
        self._fallback = fallback
        self._slots = asyncio.Semaphore(concurrency)
        self._max_tokens = max_tokens

    async def extract(self, chunks: list[ChunkText]) -> list[ChunkExtraction]:
        return list(await asyncio.gather(*(self._one(chunk) for chunk in chunks)))

    async def _one(self, chunk: ChunkText) -> ChunkExtraction:
        request = ChatRequest(self._route.provider_model, self._template.system,
                              (ChatMessage("user", Template(self._template.user).safe_substitute(text=chunk.text)),),
                              self._max_tokens)
        async with self._slots:
            try:
                data, usage = await self._route.provider.structured(request, "knowledge_graph", SCHEMA)
                route = self._route
                cost = ExtractionCost(route.model, usage.prompt_tokens, usage.completion_tokens,
                                      cost_usd(usage, route.input_usd_per_mtok, route.output_usd_per_mtok))
                return parse_extraction(chunk, data, cost)
            except (ProviderError, ValueError) as exc:
                log.warning("LLM extraction of chunk %s failed, extracting offline: %s", chunk.chunk_id, exc)
        return (await self._fallback.extract([chunk]))[0]
