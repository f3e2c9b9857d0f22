"""Chat completions as the OpenAI API has them: the client sends the whole exchange, Keel answers with one of
the models the workspace's plan allows — through the same model-call service as answers (budget reserved
and settled, retries, breakers, fallbacks), without retrieval and without storing a conversation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from uuid import UUID

from src.core.llm.budget import BudgetDecision, spender_of
from src.core.llm.calls import ModelCalls
from src.core.llm.resilience import Attempt
from src.ports.billing import EntitlementChecker
from src.ports.conversation import ChatSettings, ConversationUnitOfWork
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.models import ChatMessage, ChatRequest, Finished, ModelRoute, TextDelta, TokenCounter, Usage
from src.ports.shared import InvalidInput, NotFound

ROLES = ("system", "developer", "user", "assistant")
MAX_MESSAGES = 200
PER_MESSAGE_OVERHEAD = 4  # tokens a chat format adds around each message
TEMPLATE = "client_messages"  # the template label of completions: the client wrote the prompt


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    messages: tuple[ChatMessage, ...]  # roles as the client sent them (system/developer included)
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    """The end of a completion: what answered, what it cost and why it stopped."""

    id: UUID
    model: str
    usage: Usage
    cost_usd: float
    finish_reason: str  # stop, length


CompletionEvent = str | Completed  # text as it comes, then Completed


def check_request(request: CompletionRequest, settings: ChatSettings) -> CompletionRequest:
    if not request.messages:
        raise InvalidInput("messages must hold at least one message", field="messages")
    if len(request.messages) > MAX_MESSAGES:
        raise InvalidInput(f"at most {MAX_MESSAGES} messages", field="messages")
    if any(message.role not in ROLES for message in request.messages):
        raise InvalidInput(f"a message's role is one of {', '.join(ROLES)}", field="messages")
    if not any(message.role == "user" for message in request.messages):
        raise InvalidInput("messages need a user message", field="messages")
    if sum(len(message.content) for message in request.messages) > settings.max_input_chars * 20:
        raise InvalidInput("the messages are too long", field="messages")
    if request.max_tokens is not None and not 1 <= request.max_tokens <= settings.max_output_tokens:
        raise InvalidInput(f"max_tokens must be between 1 and {settings.max_output_tokens}", field="max_tokens")
    return request


class CompleteChat:
    """- An API key or member with content:write in the workspace; the model must be one the plan allows and
      this server can reach (NotFound otherwise, as OpenAI answers an unknown model).
    - The budget is reserved on an estimate (the messages' tokens + max_tokens) and settled on the usage the
      provider reports (counted from the text when a stream is cut short); past the soft cap the plan's
      cheaper model answers; past a hard cap QuotaExceeded before any call.
    - The requested model first, then the plan's other models as fallbacks."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], entitlements: EntitlementChecker,
                 calls: ModelCalls, counter: TokenCounter, settings: ChatSettings, access: AccessPolicy) -> None:
        self._uow = uow
        self._entitlements = entitlements
        self._calls = calls
        self._counter = counter
        self._settings = settings
        self._access = access

    async def models(self, caller: Principal | None, workspace_id: UUID) -> list[str]:
        """The models the caller may ask for: the plan's, among those this server can reach."""
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        allowed = (await self._entitlements.entitlement(workspace_id)).limits.models
        return [route.model for route in self._calls.routes(tuple(allowed))]

    async def execute(self, caller: Principal | None, workspace_id: UUID, request: CompletionRequest,
                      channel: str = "openai") -> AsyncIterator[CompletionEvent]:
        caller = await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        request = check_request(request, self._settings)
        entitlement = await self._entitlements.entitlement(workspace_id)
        if request.model not in entitlement.limits.models or not self._calls.routes((request.model,)):
            raise NotFound(f"the model {request.model!r} does not exist or this workspace's plan does not allow it")
        max_output = request.max_tokens or self._settings.max_output_tokens
        system = "\n\n".join(m.content for m in request.messages if m.role in ("system", "developer"))
        turns = tuple(m for m in request.messages if m.role in ("user", "assistant"))
        estimate = max_output + sum(self._counter.count(request.model, m.content) + PER_MESSAGE_OVERHEAD
                                    for m in request.messages)
        completion_id = uuid.uuid4()
        async with self._uow() as uow:
            decision = await self._calls.reserve(uow, entitlement, spender_of(caller, channel), completion_id,
                                                 estimate)
            await uow.commit()
        if not decision.soft_capped:  # past the soft cap the budget's cheaper model answers, whatever was asked
            decision = replace(decision, models=(request.model, *(m for m in decision.models if m != request.model)))

        def request_for(route: ModelRoute) -> ChatRequest:
            return ChatRequest(route.provider_model, system, turns, max_output)

        route, usage, text, stop = None, None, [], "stop"
        attempts: list[Attempt] = []
        try:
            async for current, event in self._calls.stream(decision, request_for, attempts, TEMPLATE):
                route = current
                if isinstance(event, TextDelta) and event.text:
                    text.append(event.text)
                    yield event.text
                elif isinstance(event, Finished):
                    usage, stop = event.usage, "length" if event.stop_reason in ("length", "max_tokens") else "stop"
        finally:
            usage = usage or self._counted(route, request_for, "".join(text))
            # settled even when the client went away and the stream was cancelled
            cost = await asyncio.shield(self._settle(decision, route, usage))
        yield Completed(completion_id, route.model if route else request.model, usage, cost, stop)

    async def _settle(self, decision: BudgetDecision, route: ModelRoute | None, usage: Usage) -> float:
        async with self._uow() as uow:
            cost = await self._calls.settle(uow, decision, route, usage, TEMPLATE)
            await uow.commit()
        return cost

    def _counted(self, route: ModelRoute | None, request_for: Callable[[ModelRoute], ChatRequest],
                 text: str) -> Usage:
        if route is None:
            return Usage(0, 0)
        sent = request_for(route)
        return Usage(self._counter.count(route.model, sent.system + "".join(m.content for m in sent.messages)),
                     self._counter.count(route.model, text))

