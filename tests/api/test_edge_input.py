"""The public edge, for what a client sends: typed errors for bad input (never "Unexpected error." or a
500), GraphQL depth/alias/token/cost limits, body sizes, the operation timeout, CORS, the production
switch and the websocket protocol's malformed messages."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from sqlalchemy import text

from src.main import create_app
from tests.conftest import asgi_client, graphql, signed_up, ws_transport

SEARCH = """query($w: ID!, $q: String!, $k: Int!, $m: SearchMode!) { search(workspaceId: $w, query: $q, k: $k,
  mode: $m) { __typename ... on Error { code } } }"""


def _error(body: dict) -> dict:
    assert body["data"] is None or all(value is None for value in body["data"].values()), body
    return body["errors"][0]


async def _account(client) -> tuple[dict, str, str]:
    me = await signed_up(client)
    return me, me["accessToken"], me["user"]["workspaces"][0]["id"]


@pytest.mark.parametrize(("variables", "named"), [
    ({"k": "ten"}, "$k"),  # wrong type
    ({"k": None}, "$k"),  # a required variable missing
    ({"m": "SIDEWAYS"}, "$m"),  # not a value of the enum
])
async def test_a_variable_that_cannot_be_coerced_is_named_in_a_typed_error(client, variables, named):
    _, token, ws = await _account(client)
    sent = {"w": ws, "q": "x", "k": 3, "m": "HYBRID", **variables}
    error = _error(await graphql(client, SEARCH, token=token, **sent))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and named in error["message"], error


async def test_nul_characters_are_refused_at_the_edge_and_nothing_is_stored(client, container):
    _, token, ws = await _account(client)
    error = _error(await graphql(client, SEARCH, token=token, w=ws, q="a\x00b", k=3, m="HYBRID"))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "NUL" in error["message"]
    rename = 'mutation($w: ID!) { createConversation(workspaceId: $w, title: "x\\u0000y") { __typename } }'
    assert _error(await graphql(client, rename, token=token, w=ws))["extensions"]["code"] == "BAD_USER_INPUT"
    batch = """mutation($w: ID!, $d: [DocumentInput!]!) { uploadDocuments(workspaceId: $w, documents: $d) {
      __typename } }"""
    documents = [{"title": "fine", "text": "fine text", "metadata": {"k\x00": "v"}}]
    assert _error(await graphql(client, batch, token=token, w=ws, d=documents))["extensions"]["code"] == \
        "BAD_USER_INPUT"
    async with container.engine().connect() as connection:
        stored = (await connection.execute(text("SELECT count(*) FROM documents WHERE workspace_id = :w"),
                                           {"w": ws})).scalar_one()
    assert stored == 0


async def test_nesting_is_bounded_without_exhausting_the_stack(client):
    _, token, _ = await _account(client)
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    deep = "1"
    for _ in range(1000):
        deep = '{"a": ' + deep + "}"
    body = '{"query": "query($m: JSON) { plans { name } }", "variables": {"m": ' + deep + "}}"
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400 and "nested too deeply" in response.text
    nested: object = 1
    for _ in range(40):
        nested = {"a": nested}
    upload = "mutation($w: ID!, $m: JSON) { uploadDocuments(workspaceId: $w, documents: [{title: \"t\", " \
             "text: \"t\", metadata: $m}]) { __typename } }"
    error = _error(await graphql(client, upload, token=token, w="00000000-0000-0000-0000-000000000000", m=nested))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "nested" in error["message"]


async def test_a_string_where_a_file_belongs_is_a_typed_error(client):
    _, token, ws = await _account(client)
    upload = "mutation($w: ID!, $f: Upload!) { uploadDocument(workspaceId: $w, file: $f) { __typename } }"
    error = _error(await graphql(client, upload, token=token, w=ws, f="not a file"))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "$f" in error["message"]


async def test_a_domain_refusal_escaping_a_resolver_keeps_its_code(client):
    me, token, ws = await _account(client)
    create = """mutation($w: ID!) { createApiKey(workspaceId: $w, name: "k", scopes: [CONTENT_READ]) {
      ... on CreatedApiKey { secret } } }"""
    secret = (await graphql(client, create, token=token, w=ws))["data"]["createApiKey"]["secret"]
    error = _error(await graphql(client, "{ workspaces { id } }", headers={"X-Api-Key": secret}))
    assert error["extensions"]["code"] == "FORBIDDEN" and error["message"] != "Unexpected error."


async def test_aliases_tokens_depth_and_cost_are_refused_before_anything_runs(client, caplog):
    _, token, ws = await _account(client)
    many = "{ " + " ".join(f"a{i}: plans {{ name }}" for i in range(5000)) + " }"
    response = await client.post("/graphql", json={"query": many})
    assert response.status_code == 200 and len(response.content) < 5000
    assert _error(response.json())["extensions"]["code"] in ("GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED")
    aliased = "{ " + " ".join(f"a{i}: plans {{ name }}" for i in range(40)) + " }"
    assert "alias" in _error((await client.post("/graphql", json={"query": aliased})).json())["message"].lower()
    level = "neighbours(first: 50) { ... on Neighbours { items { entity { id %s } } } }"
    nested = "id"
    for _ in range(10):
        nested = level % nested
    deep = f'query($w: ID!) {{ entity(workspaceId: $w, id: "{ws}") {{ ... on Entity {{ {nested} }} }} }}'
    assert "depth" in _error(await graphql(client, deep, token=token, w=ws))["message"].lower()
    costly = level % (level % (level % "id"))
    expensive = f'query($w: ID!) {{ entity(workspaceId: $w, id: "{ws}") {{ ... on Entity {{ {costly} }} }} }}'
    with caplog.at_level(logging.WARNING, logger="keel.graphql"):
        error = _error(await graphql(client, expensive, token=token, w=ws))
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "fields" in error["message"]
    refused = [r for r in caplog.records if r.name == "keel.graphql"]
    assert refused and all(r.levelno == logging.WARNING and r.exc_info is None for r in refused)


async def test_bodies_larger_than_the_route_allows_are_refused_with_413(settings, container):
    app = create_app(settings.model_copy(update={"max_request_bytes": 2_000}), container)
    async with asgi_client(app) as client:
        big = {"query": "{ plans { name } }", "variables": {"pad": "x" * 5_000}}
        assert (await client.post("/graphql", json=big)).status_code == 413
        assert (await client.post("/webhooks/stripe", content=b"x" * 5_000)).status_code == 413

        async def chunks():
            for _ in range(10):
                yield b"x" * 1_000  # no Content-Length: counted as it arrives

        assert (await client.post("/graphql", content=chunks(),
                                  headers={"content-type": "application/json"})).status_code == 413
        assert (await client.post("/graphql", json={"query": "{ plans { name } }"})).status_code == 200


async def test_a_query_past_the_timeout_is_stopped_with_a_typed_error(settings, container):
    app = create_app(settings.model_copy(update={"graphql_timeout_seconds": 0.001}), container)
    async with asgi_client(app) as client:
        me = await asyncio.wait_for(_signed_up_slowly(settings, container), 60)
        body = await graphql(client, SEARCH, token=me["accessToken"], w=me["user"]["workspaces"][0]["id"], q="x",
                             k=3, m="HYBRID")
    assert _error(body)["extensions"]["code"] == "TIMEOUT"


async def _signed_up_slowly(settings, container) -> dict:
    async with asgi_client(create_app(settings, container)) as client:
        return await signed_up(client)


async def test_cors_lets_the_configured_frontend_call_and_no_one_else(settings, container):
    app = create_app(settings.model_copy(update={"cors_origins": "https://app.example.com"}), container)
    async with asgi_client(app) as client:
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"}
        allowed = await client.options("/graphql", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "access-control-allow-credentials" not in allowed.headers
        refused = await client.options("/graphql", headers={**preflight, "Origin": "https://evil.example"})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        simple = await client.post("/graphql", json={"query": "{ plans { name } }"},
                                   headers={"Origin": "https://app.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    default = create_app(settings, container)  # the frontend named by the OAuth and billing return URLs
    async with asgi_client(default) as client:
        found = await client.options("/graphql", headers={**preflight, "Origin": "http://127.0.0.1:3000"})
        assert found.status_code == 200


async def test_production_turns_off_introspection_graphiql_and_suggestions(settings, container):
    app = create_app(settings.model_copy(update={"env": "production"}), container)
    async with asgi_client(app) as client:
        introspect = (await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
        assert "introspection" in _error(introspect)["message"].lower()
        typo = _error((await client.post("/graphql", json={"query": "{ plan { name } }"})).json())
        assert "Did you mean" not in typo["message"]
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
    explicit = settings.model_copy(update={"env": "production", "graphql_introspection": True, "graphiql": True})
    async with asgi_client(create_app(explicit, container)) as client:
        assert (await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()["data"]


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(settings, container):
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    for trusted, expected in (("", "10.9.9.9"), ("10.9.9.9", "203.0.113.9")):
        app = create_app(settings.model_copy(update={"trusted_proxies": trusted}), container)
        async with asgi_client(app, ip="10.9.9.9") as client:
            me = await _signed_up_with(client, forwarded)
        async with container.engine().connect() as connection:
            seen = (await connection.execute(text(
                "SELECT client_ip FROM audit_events WHERE actor_id = :u AND action = 'user.signed_up'"),
                {"u": me["user"]["id"]})).scalar_one()
        assert seen == expected


async def _signed_up_with(client, headers) -> dict:
    import uuid

    from tests.conftest import PASSWORD, SIGN_UP

    body = await graphql(client, SIGN_UP, headers=headers, email=f"fwd-{uuid.uuid4().hex[:8]}@example.com",
                         password=PASSWORD)
    return body["data"]["signUp"]


async def test_malformed_websocket_messages_close_with_4400_and_a_syntax_error_is_an_error(settings, container):
    app = create_app(settings, container)
    async with httpx.AsyncClient(transport=ws_transport(app), base_url="http://keel.test") as http:
        async with aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "subscription {"}})
            message = await ws.receive_json()
            assert message["type"] == "error" and message["id"] == "1"
            assert "Syntax Error" in message["payload"][0]["message"]
            await ws.send_json({"id": "2", "type": "subscribe", "payload": "not an object"})
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_json()
            assert closed.value.code == 4400 and "payload" in closed.value.reason
        async with aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_text(json.dumps([1, 2]))
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_json()
            assert closed.value.code == 4400
