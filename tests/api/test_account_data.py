"""A person's data through GraphQL: `accountExport` holds all of it; `deleteAccount` erases it (rows counted
in every table), keeps what they added to a workspace they share, unnamed, and refuses while a shared
workspace would lose its last owner."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from src.adapters.postgres.knowledge.graph_age import graph_name
from tests.api.test_workspaces import CREATE, SET_MEMBER
from tests.conftest import PASSWORD, graphql, signed_up
from tests.conversation_helpers import ask, ids, on_plan, ready_documents

EXPORT = """{ accountExport { __typename ... on AccountExport { exportedAt data } ... on Error { code message } } }"""
DELETE_ACCOUNT = """mutation($e: String!, $p: String) { deleteAccount(confirmEmail: $e, password: $p) {
    __typename ... on AccountDeleted { workspacesDeleted rowsDeleted } ... on Error { code message } } }"""
CREATE_KEY = """mutation($w: ID!) { createApiKey(workspaceId: $w, name: "k", scopes: [CONTENT_READ]) {
    ... on CreatedApiKey { secret } } }"""


async def scalar(container, query: str, **values) -> int:
    async with container.engine().connect() as db:
        return (await db.execute(text(query), values)).scalar_one()


async def rows_of(container, user: uuid.UUID, own: uuid.UUID, email: str) -> dict[str, int]:
    """Every row that names the person or lives in their own workspace."""
    counts = {
        "users": "SELECT count(*) FROM users WHERE id = :u",
        "own workspace": "SELECT count(*) FROM workspaces WHERE id = :w",
        "memberships": "SELECT count(*) FROM memberships WHERE user_id = :u",
        "sessions": "SELECT count(*) FROM sessions WHERE user_id = :u",
        "api keys": "SELECT count(*) FROM api_keys WHERE created_by = :u OR workspace_id = :w",
        "conversations": "SELECT count(*) FROM conversations WHERE user_id = :u OR workspace_id = :w",
        "messages": "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    "WHERE c.user_id = :u",
        "documents": "SELECT count(*) FROM documents WHERE created_by = :u OR workspace_id = :w",
        "chunks": "SELECT count(*) FROM chunks WHERE workspace_id = :w",
        "vectors": "SELECT count(*) FROM chunk_embeddings WHERE workspace_id = :w",
        "graph entities": "SELECT count(*) FROM kg_entities WHERE workspace_id = :w",
        "AGE graph": "SELECT count(*) FROM ag_catalog.ag_graph WHERE name = :g",
        "usage": "SELECT count(*) FROM usage_records WHERE user_id = :u OR workspace_id = :w",
        "audit": "SELECT count(*) FROM audit_events WHERE actor_id = :u OR subject IN (:e, :t)",
        "emails": "SELECT count(*) FROM email_outbox WHERE recipient = :e",
    }
    return {name: await scalar(container, query, u=user, t=str(user), w=own, e=email, g=graph_name(own))
            for name, query in counts.items()}


async def test_export_holds_a_persons_data_and_erasure_removes_it_keeping_shared_work_unnamed(client, container):
    alice, bob = await signed_up(client), await signed_up(client)
    alice_id, alices = ids(alice)
    bob_id, bobs = ids(bob)
    email, token = alice["user"]["email"], alice["accessToken"]
    await on_plan(container, bobs, "team")  # seats for two
    assert (await graphql(client, SET_MEMBER, w=str(bobs), e=email, r="MEMBER",
                          token=bob["accessToken"]))["data"]["setMember"]["__typename"] == "Member"
    await ready_documents(container, alices, {"Glaciers": "# Glaciers\n\nGlaciers carve fjords in Norway."},
                          uploaded_by=alice_id)
    [shared_document] = await ready_documents(container, bobs, {"Dunes": "# Dunes\n\nDunes migrate downwind."},
                                              uploaded_by=alice_id)
    await ask(container, alice_id, alices, "How do glaciers make fjords?")
    await ask(container, alice_id, bobs, "Do dunes move?")
    await graphql(client, CREATE_KEY, w=str(alices), token=token)
    await graphql(client, "mutation($e: String!) { requestPasswordReset(email: $e) { __typename } }", e=email)

    export = (await graphql(client, EXPORT, token=token))["data"]["accountExport"]
    data = export["data"]
    assert data["profile"]["email"] == email and data["format"] == "keel-account-export/1"
    assert {w["id"] for w in data["workspaces"]} == {str(alices), str(bobs)}
    assert sorted(d["title"] for d in data["documents_uploaded"]) == ["Dunes", "Glaciers"]
    assert sorted(m["content"] for c in data["conversations"] for m in c["messages"] if m["role"] == "user") == [
        "Do dunes move?", "How do glaciers make fjords?"]
    assert data["api_keys"][0]["name"] == "k" and data["sessions"] and data["usage"] and data["audit"]
    assert "password_hash" not in str(data) and "key_hash" not in str(data)
    bobs_view = (await graphql(client, EXPORT, token=bob["accessToken"]))["data"]["accountExport"]["data"]
    assert bobs_view["conversations"] == [] and bobs_view["documents_uploaded"] == []  # only one's own

    before = await rows_of(container, alice_id, alices, email)
    assert all(before[name] > 0 for name in before), before  # the test reaches every kind of row

    wrong = [(dict(e="someone@example.com", p=PASSWORD), "InvalidInputError"),
             (dict(e=email, p="not the password"), "AuthError")]
    for variables, refusal in wrong:
        assert (await graphql(client, DELETE_ACCOUNT, token=token, **variables))["data"]["deleteAccount"][
            "__typename"] == refusal
    # a shared workspace Alice alone owns: refused until Bob is owner there too
    shared = (await graphql(client, CREATE, n="Shared", token=token))["data"]["createWorkspace"]["id"]
    await on_plan(container, uuid.UUID(shared), "team")
    await graphql(client, SET_MEMBER, w=shared, e=bob["user"]["email"], r="MEMBER", token=token)
    unchanged = await rows_of(container, alice_id, alices, email)
    refused = (await graphql(client, DELETE_ACCOUNT, e=email, p=PASSWORD, token=token))["data"]["deleteAccount"]
    assert refused["__typename"] == "InvalidInputError" and "Shared" in refused["message"]
    assert await rows_of(container, alice_id, alices, email) == unchanged  # a refusal changes nothing
    await graphql(client, SET_MEMBER, w=shared, e=bob["user"]["email"], r="OWNER", token=token)

    deleted = (await graphql(client, DELETE_ACCOUNT, e=f" {email.upper()} ", p=PASSWORD, token=token))["data"][
        "deleteAccount"]
    assert deleted["__typename"] == "AccountDeleted" and deleted["workspacesDeleted"] == 1, deleted
    assert deleted["rowsDeleted"]["users"] == 1 and deleted["rowsDeleted"]["documents"] == 1
    after = await rows_of(container, alice_id, alices, email)
    assert after == {name: 0 for name in before}, after

    # what she added to Bob's workspace stays, without her name; Bob's workspace and Shared are untouched
    assert await scalar(container, "SELECT count(*) FROM documents WHERE id = :d AND created_by IS NULL",
                        d=shared_document) == 1
    assert await scalar(container, "SELECT count(*) FROM usage_records WHERE workspace_id = :w AND user_id IS NULL",
                        w=bobs) == 1
    assert await scalar(container, "SELECT count(*) FROM workspaces WHERE id IN (:b, CAST(:s AS uuid))",
                        b=bobs, s=shared) == 2
    gone = (await graphql(client, EXPORT, token=token))
    assert gone["data"] is None or gone["data"]["accountExport"]["__typename"] == "AuthError", gone
    signed_in = (await graphql(client, "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) "
                                       "{ __typename } }", e=email, p=PASSWORD))["data"]["signIn"]
    assert signed_in["__typename"] == "AuthError"
    assert (await graphql(client, EXPORT, token=bob["accessToken"]))["data"]["accountExport"]["data"]["profile"][
        "id"] == str(bob_id)


async def test_an_api_key_can_neither_export_nor_delete_the_account(client):
    alice = await signed_up(client)
    _, workspace = ids(alice)
    key = (await graphql(client, CREATE_KEY, w=str(workspace), token=alice["accessToken"]))["data"]["createApiKey"]
    for query, variables in ((EXPORT, {}), (DELETE_ACCOUNT, {"e": alice["user"]["email"], "p": PASSWORD})):
        body = await graphql(client, query, headers={"Authorization": f"Bearer {key['secret']}"}, **variables)
        field = next(iter(body["data"] or {"x": None}))
        assert body["data"] is None or body["data"][field]["__typename"] in ("AuthError", "ForbiddenError"), body
    assert (await graphql(client, EXPORT, token=alice["accessToken"]))["data"]["accountExport"]["__typename"] == (
        "AccountExport")
