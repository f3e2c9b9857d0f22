"""Conversations: create, list (cursor pages), read with messages, rename, delete; usage reports; a title
suggested by the model through structured output. A conversation is its owner's alone."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from src.core.llm.budget import spender_of
from src.core.llm.calls import ModelCalls
from src.ports.billing import EntitlementChecker
from src.ports.conversation import Conversation, ConversationPage, ConversationUnitOfWork, Message
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.metering import Owner, UsageRow
from src.ports.models import ChatMessage, ChatRequest, ModelRoute, PromptLibrary
from src.ports.shared import Clock, InvalidInput, NotFound

MAX_TITLE = 200
MAX_PAGE = 100
TITLE_TEMPLATE = "conversation_title"
TITLE_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["title"],
                "properties": {"title": {"type": "string", "description": "3 to 8 words, no quotes"}}}


def check_title(title: str) -> str:
    cleaned = " ".join(title.split())
    if not cleaned or len(cleaned) > MAX_TITLE:
        raise InvalidInput(f"a title needs 1 to {MAX_TITLE} characters", field="title")
    return cleaned


def owner_of(caller: Principal) -> Owner:
    """A member's conversations are theirs; an API key's are the key's alone, not its creator's: a key is an
    integration acting for the workspace, so it neither reads its creator's private chats (a leaked
    read-only key would expose them) nor fills the member's own list with its machine conversations."""
    return Owner(caller.user_id, caller.api_key_id)


def new_conversation(workspace_id: UUID, owner: Owner, first_words: str, now: datetime) -> Conversation:
    title = " ".join(first_words.split()[:8])[:MAX_TITLE] or "New conversation"
    return Conversation(uuid.uuid4(), workspace_id, owner.user_id, title, now, now, owner.api_key_id)


async def load_owned(uow: ConversationUnitOfWork, conversation_id: UUID, owner: Owner,
                     workspace_id: UUID) -> Conversation:
    """The conversation, if it is this owner's in this workspace; otherwise NotFound (never 'forbidden':
    that would confirm it exists)."""
    conversation = await uow.conversations.get(conversation_id)
    if (conversation is None or conversation.workspace_id != workspace_id
            or Owner(conversation.user_id, conversation.api_key_id) != owner):
        raise NotFound("no such conversation")
    return conversation


def _cursor(conversation: Conversation) -> str:
    return base64.urlsafe_b64encode(f"{conversation.updated_at.isoformat()}|{conversation.id}".encode()).decode()


def _parse_cursor(raw: str) -> tuple[datetime, UUID]:
    try:
        stamp, ident = base64.urlsafe_b64decode(raw.encode()).decode().split("|")
        return datetime.fromisoformat(stamp), UUID(ident)
    except ValueError:
        raise InvalidInput("not a valid cursor", field="after") from None


@dataclass(frozen=True, slots=True)
class ConversationWithMessages:
    conversation: Conversation
    messages: list[Message]


class _UseCase:
    def __init__(self, uow: Callable[[], ConversationUnitOfWork], clock: Clock, access: AccessPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._access = access


class CreateConversation(_UseCase):
    async def execute(self, caller: Principal, workspace_id: UUID, title: str | None = None) -> Conversation:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        now = self._clock.now()
        conversation = new_conversation(workspace_id, owner_of(caller), check_title(title) if title else "", now)
        async with self._uow() as uow:
            await uow.conversations.add(conversation)
            await uow.commit()
        return conversation


class ListConversations(_UseCase):
    async def execute(self, caller: Principal, workspace_id: UUID, first: int = 20,
                      after: str | None = None) -> ConversationPage:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", field="first")
        async with self._uow() as uow:
            rows = await uow.conversations.page(workspace_id, owner_of(caller), first + 1,
                                                _parse_cursor(after) if after else None)
        more = len(rows) > first
        rows = rows[:first]
        return ConversationPage(rows, _cursor(rows[-1]) if more and rows else None)


class GetConversation(_UseCase):
    async def execute(self, caller: Principal, workspace_id: UUID, conversation_id: UUID,
                      last: int = 50) -> ConversationWithMessages:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        if not 1 <= last <= 500:
            raise InvalidInput("last must be between 1 and 500", field="last")
        async with self._uow() as uow:
            conversation = await load_owned(uow, conversation_id, owner_of(caller), workspace_id)
            return ConversationWithMessages(conversation, await uow.messages.history(conversation_id, last))


class GetMessage(_UseCase):
    async def execute(self, caller: Principal, workspace_id: UUID, message_id: UUID) -> Message:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        async with self._uow() as uow:
            message = await uow.messages.get(message_id)
            if message is None:
                raise NotFound("no such message")
            await load_owned(uow, message.conversation_id, owner_of(caller), workspace_id)
            return message


class RenameConversation(_UseCase):
    async def execute(self, caller: Principal, workspace_id: UUID, conversation_id: UUID, title: str) -> Conversation:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        title = check_title(title)
        async with self._uow() as uow:
            conversation = await load_owned(uow, conversation_id, owner_of(caller), workspace_id)
            renamed = replace(conversation, title=title, updated_at=self._clock.now())
            await uow.conversations.save(renamed)
            await uow.commit()
        return renamed


class DeleteConversation(_UseCase):
    async def execute(self, caller: Principal, workspace_id: UUID, conversation_id: UUID) -> UUID:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        async with self._uow() as uow:
            await load_owned(uow, conversation_id, owner_of(caller), workspace_id)
            await uow.conversations.delete(conversation_id)
            await uow.commit()
        return conversation_id


class UsageReport(_UseCase):
    """- Tokens, cost and requests per day and model over the last `days`, for the whole workspace or what
      the caller spent (a member through their sessions, or an API key)."""

    async def execute(self, caller: Principal | None, workspace_id: UUID, days: int,
                      whole_workspace: bool = False) -> list[UsageRow]:
        """`whole_workspace`: every member's and key's spend (billing:manage), else the caller's own."""
        caller = await self._access.require(
            caller, Permission.BILLING_MANAGE if whole_workspace else Permission.CONTENT_READ, workspace_id)
        if not 1 <= days <= 366:
            raise InvalidInput("days must be between 1 and 366", field="days")
        since = self._clock.now().date() - timedelta(days=days - 1)
        async with self._uow() as uow:
            return await uow.usage.report(workspace_id, since, None if whole_workspace else owner_of(caller))


class SuggestTitle:
    """- Asks the conversation's model for a short title as JSON against a schema (the providers'
    native structured output), validates it, renames the conversation. Accounted like any call."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], entitlements: EntitlementChecker,
                 calls: ModelCalls, prompts: PromptLibrary, clock: Clock, access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access
        self._entitlements = entitlements
        self._calls = calls
        self._prompts = prompts
        self._clock = clock

    async def execute(self, caller: Principal, workspace_id: UUID, conversation_id: UUID) -> Conversation:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        async with self._uow() as uow:
            conversation = await load_owned(uow, conversation_id, owner_of(caller), workspace_id)
            history = await uow.messages.history(conversation_id, 6)
        if not history:
            raise InvalidInput("the conversation has no messages yet", field="conversationId")
        entitlement = await self._entitlements.entitlement(workspace_id)
        template = self._prompts.get(TITLE_TEMPLATE)
        transcript = "\n".join(f"{m.role.value}: {m.content[:500]}" for m in history)
        async with self._uow() as uow:
            decision = await self._calls.reserve(uow, entitlement, spender_of(caller), conversation_id, 600)
            await uow.commit()

        def request_for(route: ModelRoute) -> ChatRequest:
            return ChatRequest(route.provider_model, template.system,
                               (ChatMessage("user", template.user.replace("$transcript", transcript)),), 100)

        answer = await self._calls.structured(self._calls.routes(decision.models), request_for, TITLE_TEMPLATE,
                                              TITLE_SCHEMA, accept=_has_title)
        title = answer.data["title"].strip().strip('"')[:MAX_TITLE] if answer.data else None
        async with self._uow() as uow:
            if title:
                conversation = replace(conversation, title=check_title(title), updated_at=self._clock.now())
                await uow.conversations.save(conversation)
            await self._calls.settle(uow, decision, answer.route, answer.usage, TITLE_TEMPLATE, answer.cost_usd)
            await uow.commit()
        if title is None:
            raise InvalidInput(f"no model produced a valid title: {self._calls.unavailable(answer)}",
                               field="conversationId")
        return conversation


def _has_title(data: dict[str, Any]) -> bool:
    return isinstance(data.get("title"), str) and bool(data["title"].strip().strip('"'))
