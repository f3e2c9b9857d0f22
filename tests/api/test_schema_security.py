"""The whole schema, found by introspection: every root field but the public ones refuses an anonymous
caller (queries and mutations over HTTP, subscriptions over graphql-transport-ws). New fields are swept
automatically; only the public list below is maintained by hand."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_ws import aconnect_ws

from tests.conftest import NO_RATE_LIMITS, asgi_client, graphql, keel_app, ws_transport

PUBLIC = {"signUp", "signIn", "refreshSession", "startOAuth", "completeOAuth", "requestPasswordReset",
          "resetPassword", "plans", "oauthProviders"}

INTROSPECT = """{ __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { name kind fields { name args { name type { ...T } } type { ...T } } enumValues { name } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""
SAMPLES = {"ID": '"00000000-0000-0000-0000-000000000000"', "String": '"x"', "Int": "1", "Float": "1.0",
           "Boolean": "false", "DateTime": '"2026-01-01T00:00:00Z"', "JSON": "{}"}


def _named(type_ref: dict) -> dict:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref


def _literal(type_ref: dict, types: dict) -> str:
    if type_ref["kind"] == "NON_NULL":
        return _literal(type_ref["ofType"], types)
    if type_ref["kind"] == "LIST":
        return f"[{_literal(type_ref['ofType'], types)}]"
    if type_ref["kind"] == "ENUM":
        return types[type_ref["name"]]["enumValues"][0]["name"]
    return SAMPLES.get(type_ref["name"], '"x"')


def _document(operation: str, field: dict, types: dict) -> str:
    """A file can only arrive as a multipart part: an Upload argument is the variable $file."""
    required = [a for a in field["args"] if a["type"]["kind"] == "NON_NULL"]
    args = [f"{a['name']}: {'$file' if _named(a['type'])['name'] == 'Upload' else _literal(a['type'], types)}"
            for a in required]
    arguments = f"({', '.join(args)})" if args else ""
    selection = " { __typename }" if _named(field["type"])["kind"] in ("OBJECT", "UNION", "INTERFACE") else ""
    variables = "($file: Upload!)" if "$file" in arguments else ""
    return f"{operation}{variables} {{ {field['name']}{arguments}{selection} }}"


async def _post(client, document: str) -> dict:
    if "$file" not in document:
        return (await client.post("/graphql", json={"query": document})).json()
    operations = json.dumps({"query": document, "variables": {"file": None}})
    response = await client.post("/graphql", data={"operations": operations, "map": '{"0": ["variables.file"]}'},
                                 files={"0": ("a.txt", b"text", "text/plain")})
    return response.json()


async def _root_fields(client) -> list[tuple[str, str]]:
    schema = (await graphql(client, INTROSPECT))["data"]["__schema"]
    types = {t["name"]: t for t in schema["types"]}
    found = []
    for operation, root in (("query", "queryType"), ("mutation", "mutationType"), ("subscription", "subscriptionType")):
        if schema[root]:
            for field in types[schema[root]["name"]]["fields"]:
                found.append((field["name"], _document(operation, field, types)))
    return found


async def test_every_non_public_field_refuses_an_anonymous_caller(settings):
    async with keel_app(settings, **NO_RATE_LIMITS) as app, asgi_client(app) as client:  # a sweep of every field
        await _sweep(app, client)


async def _sweep(app, client) -> None:
    fields = await _root_fields(client)
    assert len(fields) >= 25 and {name for name, _ in fields} >= PUBLIC
    swept = 0
    for name, document in fields:
        if name in PUBLIC:
            continue
        if document.startswith("subscription"):
            code = await _subscription_error_code(app, document)
        else:
            body = await _post(client, document)
            assert body.get("data") in (None, {name: None}) or body["data"] is None, (name, body)
            code = body["errors"][0]["extensions"]["code"] if body.get("errors") else None
        assert code == "UNAUTHENTICATED", (name, document, code)
        swept += 1
    assert swept == len(fields) - len(PUBLIC)


async def _subscription_error_code(app, document: str) -> str | None:
    transport = ws_transport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http,
        aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": document}})
        message = await ws.receive_json()
        errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors", [])
        return errors[0].get("extensions", {}).get("code") if errors else None


@pytest.mark.parametrize("name", sorted(PUBLIC))
async def test_public_fields_answer_anonymous_callers(client, name):
    fields = dict(await _root_fields(client))
    body = (await client.post("/graphql", json={"query": fields[name]})).json()
    assert not body.get("errors"), body
