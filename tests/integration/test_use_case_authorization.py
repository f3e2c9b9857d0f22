"""Authorization is decided in core: every use case a person calls, driven directly (as a REST route, the
CLI or a worker would) with a caller from another workspace, is refused, whatever the GraphQL guard does.
New caller-facing use cases are found in the container and must be listed here."""

from __future__ import annotations

import inspect
import uuid

import pytest

from src.core.conversation.completions import CompletionRequest
from src.core.knowledge.documents import DocumentUpload
from src.core.knowledge.search import SearchRequest
from src.ports.conversation import Rating
from src.ports.identity import ClientInfo, Forbidden, Principal, Role, WorkspaceRole
from src.ports.models import ChatMessage
from src.ports.shared import NotFound
from tests.conversation_helpers import account, member

ANY = uuid.uuid4()  # ids of things that may not even exist: the answer must not depend on it


async def _first(generator):
    async for item in generator:
        return item


def _calls(container, ws):
    """(name, call with a foreign caller) for every caller-facing use case."""
    upload = [DocumentUpload("t", b"text", "text/plain")]
    return {
        "upload_documents": lambda c: container.upload_documents().execute(c, ws, upload),
        "get_document": lambda c: container.get_document().execute(c, ws, ANY),
        "list_documents": lambda c: container.list_documents().execute(c, ws),
        "delete_document": lambda c: container.delete_document().execute(c, ws, ANY),
        "watch_document": lambda c: _first(container.watch_document().execute(c, ws, ANY)),
        "search_workspace": lambda c: container.search_workspace().execute(c, SearchRequest(ws, "x")),
        "search_entities": lambda c: container.search_entities().execute(c, ws, "x"),
        "explore_entity": lambda c: container.explore_entity().neighbours(c, ws, ANY),
        "find_path": lambda c: container.find_path().execute(c, ws, ANY, ANY),
        "recent_entities": lambda c: container.recent_entities().execute(c, ws, ANY),
        "send_message": lambda c: _first(container.send_message().execute(c, ws, None, "hello")),
        "follow_message": lambda c: _first(container.follow_message().execute(c, ws, ANY)),
        "stop_answer": lambda c: container.stop_answer().execute(c, ws, ANY),
        "create_conversation": lambda c: container.create_conversation().execute(c, ws, "x"),
        "list_conversations": lambda c: container.list_conversations().execute(c, ws),
        "get_conversation": lambda c: container.get_conversation().execute(c, ws, ANY),
        "get_message": lambda c: container.get_message().execute(c, ws, ANY),
        "rename_conversation": lambda c: container.rename_conversation().execute(c, ws, ANY, "x"),
        "delete_conversation": lambda c: container.delete_conversation().execute(c, ws, ANY),
        "suggest_title": lambda c: container.suggest_title().execute(c, ws, ANY),
        "usage_report": lambda c: container.usage_report().execute(c, ws, 7, whole_workspace=True),
        "complete_chat": lambda c: _first(container.complete_chat().execute(
            c, ws, CompletionRequest("gpt-4o-mini", (ChatMessage("user", "hi"),)))),
        "embed_texts": lambda c: container.embed_texts().execute(c, ws, ["hi"]),
        "rate_answer": lambda c: container.rate_answer().execute(c, ws, ANY, Rating.UP),
        "export_feedback": lambda c: container.export_feedback().execute(c, ws),
        "answer_analytics": lambda c: container.answer_analytics().execute(c, ws),
        "start_checkout": lambda c: container.start_checkout().execute(c, ws, "pro"),
        "open_billing_portal": lambda c: container.open_billing_portal().execute(c, ws),
        "view_entitlement": lambda c: container.view_entitlement().execute(c, ws),
        "billing_overview": lambda c: container.billing_overview().execute(c, ws),
        "list_webhook_events": lambda c: container.list_webhook_events().execute(c, None),
        "list_billing_repairs": lambda c: container.list_billing_repairs().execute(c),
        "request_reconciliation": lambda c: container.request_reconciliation().execute(c),
        "request_worker_probe": lambda c: container.request_worker_probe().execute(c),
        "get_worker_probe": lambda c: container.get_worker_probe().execute(c, ANY),
        "watch_worker_probe": lambda c: _first(container.watch_worker_probe().execute(c, ANY)),
        "get_workspace": lambda c: container.get_workspace().execute(c, ws),
        "rename_workspace": lambda c: container.rename_workspace().execute(c, ws, "x", ClientInfo()),
        "delete_workspace": lambda c: container.delete_workspace().execute(c, ws, ClientInfo()),
        "list_members": lambda c: container.list_members().execute(c, ws),
        "set_member": lambda c: container.set_member().execute(c, ws, "x@example.com", WorkspaceRole.OWNER,
                                                               ClientInfo()),
        "remove_member": lambda c: container.remove_member().execute(c, ws, ANY, ClientInfo()),
        "create_api_key": lambda c: container.create_api_key().execute(c, ws, "k", ["content:read"], ClientInfo()),
        "list_api_keys": lambda c: container.list_api_keys().execute(c, ws),
        "query_audit_log": lambda c: container.query_audit_log().execute(c, action=None, actor_id=None, before=None,
                                                                         limit=10),
        "set_user_role": lambda c: container.set_user_role().execute(c, ANY, Role.ADMIN, ClientInfo()),
        "list_users": lambda c: container.list_users().execute(c, "a"),
    }


# use cases with a caller that are not a person's call into a workspace: the caller's own account and sessions
OWN_ACCOUNT = {"get_current_user", "list_workspaces", "create_workspace", "sign_out", "change_password",
               "revoke_api_key", "export_account_data", "erase_account"}


async def test_every_caller_facing_use_case_refuses_a_caller_from_another_workspace(container):
    _, workspace = await account(container)
    stranger_id, _ = await account(container)
    stranger = member(stranger_id)
    for name, call in _calls(container, workspace).items():
        with pytest.raises((Forbidden, NotFound)):
            await call(stranger)
        with pytest.raises(Exception) as anonymous:
            await call(None)
        assert type(anonymous.value).__name__ in ("Unauthenticated", "Forbidden"), (name, anonymous.value)


async def test_the_list_above_covers_every_use_case_that_takes_a_caller(container):
    listed = set(_calls(container, uuid.uuid4())) | OWN_ACCOUNT
    taking_a_caller = set()
    for name, provider in container.providers.items():
        if not hasattr(provider, "cls") or not inspect.isclass(provider.cls):
            continue
        for method in ("execute", "get", "neighbours", "chunks"):
            function = getattr(provider.cls, method, None)
            parameters = list(inspect.signature(function).parameters)[1:2] if function else []
            if parameters and parameters[0] in ("caller", "principal"):
                taking_a_caller.add(name)
    assert taking_a_caller - listed == set()


async def test_a_member_is_let_through_by_the_same_policy(container):
    user_id, workspace = await account(container)
    me = member(user_id)
    assert (await container.list_documents().execute(me, workspace)).documents == []
    assert await container.search_workspace().execute(me, SearchRequest(workspace, "anything")) == []
    assert (await container.view_entitlement().execute(me, workspace)).workspace_id == workspace
    admin = Principal(user_id, Role.ADMIN)
    assert await container.list_billing_repairs().execute(admin, 1) is not None
