"""Entity and relation extraction by a language model (KEEL_GRAPH_EXTRACTOR=llm), through ModelCalls like
any other model call: a document's extraction is reserved on its workspace's budget (its chunks and an answer
for each, spent by its uploader), every chunk is asked for JSON against SCHEMA with the retries and circuit
breaker answers get, and the actual usage is settled once. A document past the budget (or the plan's soft
cap), and a chunk no model answers, are extracted offline instead: ingestion never stalls on the model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from string import Template
from typing import Any

from src.core.llm.calls import ModelCalls, Structured
from src.ports.billing import EntitlementChecker, QuotaExceeded
from src.ports.graph import ChunkExtraction, ChunkText, EntityExtractor, EntityMention, RelationMention
from src.ports.knowledge import Document, KnowledgeUnitOfWork
from src.ports.metering import Spender
from src.ports.models import ChatMessage, ChatRequest, ModelRoute, PromptTemplate, TokenCounter, Usage

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
EXTRACTION = "knowledge_graph"  # the structured output's name, and its calls' template label
TEMPLATE_ALLOWANCE = 300  # tokens of instructions around each chunk


def parse_extraction(chunk: ChunkText, data: dict[str, Any]) -> ChunkExtraction:
    """The model's answer as an extraction; ValueError when it does not fit the schema."""
    try:
        entities = tuple(EntityMention(str(e["name"])[:200], str(e["type"])[:40] or "term",
                                       tuple(str(a)[:200] for a in e["aliases"])[:10])
                         for e in data["entities"][:MAX_ITEMS] if str(e["name"]).strip())
        relations = tuple(RelationMention(str(r["subject"]), str(r["predicate"])[:80] or "related_to",
                                          str(r["object"])) for r in data["relations"][:MAX_ITEMS])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"the extraction does not fit the schema: {exc!r}") from None
    return ChunkExtraction(chunk.chunk_id, entities, relations)


def _fits(chunk: ChunkText) -> Callable[[dict[str, Any]], bool]:
    def accept(data: dict[str, Any]) -> bool:
        try:
            parse_extraction(chunk, data)
        except ValueError:
            return False
        return True

    return accept


class LlmExtraction:
    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], calls: ModelCalls, entitlements: EntitlementChecker,
                 counter: TokenCounter, model: str, template: PromptTemplate, offline: EntityExtractor,
                 concurrency: int = 4, max_tokens: int = 1500) -> None:
        self._uow = uow
        self._calls = calls
        self._entitlements = entitlements
        self._counter = counter
        self._model = model
        self._template = template
        self._offline = offline
        self._slots = asyncio.Semaphore(concurrency)
        self._max_tokens = max_tokens

    async def extract(self, document: Document, chunks: list[ChunkText]) -> list[ChunkExtraction]:
        routes = self._calls.routes((self._model,))
        if not routes or not chunks:
            return await self._offline.extract(chunks)
        estimate = sum(self._counter.count(self._model, chunk.text) + TEMPLATE_ALLOWANCE + self._max_tokens
                       for chunk in chunks)
        entitlement = await self._entitlements.entitlement(document.workspace_id)
        try:
            async with self._uow() as uow:
                decision = await self._calls.reserve(uow, entitlement, Spender(document.created_by, channel="worker"),
                                                     document.id, estimate)
                await uow.commit()
        except QuotaExceeded as exc:
            log.warning("document %s extracted offline: %s", document.id, exc)
            return await self._offline.extract(chunks)
        answers: list[Structured] = []
        try:
            if decision.soft_capped:  # past the plan's soft cap, extraction spends nothing more
                return await self._offline.extract(chunks)
            answers = list(await asyncio.gather(*(self._one(routes, chunk) for chunk in chunks)))
            pairs = zip(chunks, answers, strict=True)
            return [parse_extraction(chunk, answer.data) if answer.data is not None
                    else (await self._offline.extract([chunk]))[0] for chunk, answer in pairs]
        finally:
            usage = Usage(sum(a.usage.prompt_tokens for a in answers), sum(a.usage.completion_tokens for a in answers))
            route = next((a.route for a in answers if a.route is not None), None)
            async with self._uow() as uow:
                await self._calls.settle(uow, decision, route, usage, EXTRACTION, sum(a.cost_usd for a in answers))
                await uow.commit()

    async def _one(self, routes: list[ModelRoute], chunk: ChunkText) -> Structured:
        def request_for(route: ModelRoute) -> ChatRequest:
            text = Template(self._template.user).safe_substitute(text=chunk.text)
            return ChatRequest(route.provider_model, self._template.system, (ChatMessage("user", text),),
                               self._max_tokens)

        async with self._slots:
            answer = await self._calls.structured(routes, request_for, EXTRACTION, SCHEMA, _fits(chunk))
        if answer.data is None:
            log.warning("LLM extraction of chunk %s failed, extracting offline: %s", chunk.chunk_id,
                        self._calls.unavailable(answer))
        return answer
