"""API keys: shown once, stored hashed, one workspace, scoped, revocable, last-used time."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.conftest import graphql, signed_up
from tests.conversation_helpers import on_plan

CREATE_KEY = """mutation($w: ID!, $s: [Permission!]!) { createApiKey(workspaceId: $w, name: "ci", scopes: $s) {
  __typename ... on CreatedApiKey { secret apiKey { id prefix scopes lastUsedAt } }
  ... on Error { code message } } }"""
KEYS = "query($w: ID!) { apiKeys(workspaceId: $w) { id prefix scopes lastUsedAt revokedAt } }"
WORKSPACES = "{ workspaces { id name } }"
WORKSPACE = "query($id: ID!) { workspace(id: $id) { __typename ... on Workspace { name } } }"
RENAME = "mutation($id: ID!) { renameWorkspace(id: $id, name: \"renamed by key\") { __typename } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { __typename ... on ApiKey { revokedAt } } }"


def _code(body: dict) -> str | None:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


async def _key(client, account, scopes, workspace=None) -> dict:
    workspace = workspace or account["user"]["workspaces"][0]["id"]
    body = await graphql(client, CREATE_KEY, w=workspace, s=scopes, token=account["accessToken"])
    return body["data"]["createApiKey"]


async def test_the_secret_is_shown_once_and_stored_only_as_a_hash(client, container):
    owner = await signed_up(client)
    created = await _key(client, owner, ["WORKSPACE_READ"])
    secret, key = created["secret"], created["apiKey"]
    assert secret.startswith(key["prefix"] + "_") and len(secret) > 40
    listed = (await graphql(client, KEYS, w=owner["user"]["workspaces"][0]["id"], token=owner["accessToken"]))
    assert listed["data"]["apiKeys"][0]["prefix"] == key["prefix"] and "secret" not in str(listed)
    async with container.engine().connect() as connection:
        stored = (await connection.execute(text("SELECT key_hash FROM api_keys WHERE id = :id"),
                                           {"id": key["id"]})).scalar_one()
    assert secret not in stored and len(stored) == 64


async def test_a_key_acts_in_its_workspace_within_its_scopes(client):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    other = (await graphql(client, 'mutation { createWorkspace(name: "Other") { ... on Workspace { id } } }',
                           token=owner["accessToken"]))["data"]["createWorkspace"]["id"]
    secret = (await _key(client, owner, ["WORKSPACE_READ", "CONTENT_READ"]))["secret"]
    headers = {"X-Api-Key": secret}
    assert (await graphql(client, WORKSPACES, headers=headers))["data"]["workspaces"] == [
        {"id": workspace, "name": owner["user"]["workspaces"][0]["name"]}]
    assert (await graphql(client, WORKSPACE, id=workspace, headers=headers))["data"]["workspace"]["name"]
    # Outside its scopes, outside its workspace, and anything that is not workspace data: refused.
    assert _code(await graphql(client, RENAME, id=workspace, headers=headers)) == "FORBIDDEN"
    assert _code(await graphql(client, KEYS, w=workspace, headers=headers)) == "FORBIDDEN"
    assert _code(await graphql(client, WORKSPACE, id=other, headers=headers)) == "FORBIDDEN"
    assert _code(await graphql(client, "{ me { id } }", headers=headers)) == "FORBIDDEN"
    # The Authorization header form works the same.
    auth = {"Authorization": f"ApiKey {secret}"}
    assert (await graphql(client, WORKSPACE, id=workspace, headers=auth))["data"]["workspace"]["name"]


async def test_a_key_cannot_get_more_than_its_maker_has(client, container):
    owner, member = await signed_up(client), await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    await on_plan(container, uuid.UUID(workspace), "team")
    await graphql(client, 'mutation($w: ID!, $e: String!) { setMember(workspaceId: $w, email: $e, role: MEMBER) { __typename } }',  # noqa: E501
                  w=workspace, e=member["user"]["email"], token=owner["accessToken"])
    denied = await graphql(client, CREATE_KEY, w=workspace, s=["CONTENT_READ"], token=member["accessToken"])
    assert _code(denied) == "FORBIDDEN"  # members may not manage keys at all
    invalid = await _key(client, owner, [])
    assert invalid["__typename"] == "InvalidInputError"


async def test_a_revoked_key_stops_working_and_use_is_recorded(client):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    created = await _key(client, owner, ["WORKSPACE_READ"])
    headers = {"X-Api-Key": created["secret"]}
    assert (await graphql(client, WORKSPACE, id=workspace, headers=headers))["data"]["workspace"]
    listed = (await graphql(client, KEYS, w=workspace, token=owner["accessToken"]))["data"]["apiKeys"]
    assert listed[0]["lastUsedAt"] is not None
    revoked = await graphql(client, REVOKE, id=created["apiKey"]["id"], token=owner["accessToken"])
    assert revoked["data"]["revokeApiKey"]["revokedAt"]
    assert _code(await graphql(client, WORKSPACE, id=workspace, headers=headers)) == "UNAUTHENTICATED"
    assert _code(await graphql(client, WORKSPACE, id=workspace, headers={"X-Api-Key": "keel_0000_guess"})) \
        == "UNAUTHENTICATED"


async def test_a_key_has_its_own_rate_and_budget_and_its_conversations_are_its_own(client, container):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    create = """mutation($w: ID!) { createApiKey(workspaceId: $w, name: "agent", scopes: [CONTENT_READ,
      CONTENT_WRITE], requestsPerMinute: 3, dailyTokens: 500) { ... on CreatedApiKey { secret apiKey {
      requestsPerMinute dailyTokens } } } }"""
    created = (await graphql(client, create, w=workspace, token=owner["accessToken"]))["data"]["createApiKey"]
    assert created["apiKey"] == {"requestsPerMinute": 3, "dailyTokens": 500}
    key = {"X-Api-Key": created["secret"]}
    new = 'mutation($w: ID!) { createConversation(workspaceId: $w, title: "mine") { ... on Conversation { id } } }'
    listing = "query($w: ID!) { conversations(workspaceId: $w) { ... on ConversationConnection { items { id } } } }"
    by_key = (await graphql(client, new, w=workspace, headers=key))["data"]["createConversation"]["id"]
    by_owner = (await graphql(client, new, w=workspace, token=owner["accessToken"]))["data"]["createConversation"]
    seen_by_key = (await graphql(client, listing, w=workspace, headers=key))["data"]["conversations"]["items"]
    seen_by_owner = (await graphql(client, listing, w=workspace, token=owner["accessToken"]))["data"][
        "conversations"]["items"]
    assert seen_by_key == [{"id": by_key}] and seen_by_owner == [by_owner]
    # three units a minute: the fourth request of the key is refused, the owner is not
    assert not (await graphql(client, listing, w=workspace, headers=key)).get("errors")
    refused = await client.post("/graphql", json={"query": listing, "variables": {"w": workspace}}, headers=key)
    assert refused.status_code == 429 and _code(refused.json()) == "RATE_LIMITED"
    assert refused.headers["RateLimit-Policy"] == '"api-key";q=3;w=60' and int(refused.headers["Retry-After"]) >= 1
    assert (await graphql(client, listing, w=workspace, token=owner["accessToken"]))["data"]["conversations"]


async def test_key_limits_out_of_range_are_typed_errors(client):
    owner = await signed_up(client)
    create = """mutation($w: ID!, $r: Int) { createApiKey(workspaceId: $w, name: "k", scopes: [CONTENT_READ],
      requestsPerMinute: $r) { __typename ... on InvalidInputError { field } } }"""
    answer = await graphql(client, create, w=owner["user"]["workspaces"][0]["id"], r=0, token=owner["accessToken"])
    assert answer["data"]["createApiKey"] == {"__typename": "InvalidInputError", "field": "requestsPerMinute"}
