"""Schema-driven fuzzing of the GraphQL API (hypothesis-graphql) against `keel serve`, anonymous and signed
in: every generated query and mutation gets a typed answer, never an HTTP 5xx nor "Unexpected error.".

`KEEL_FUZZ_EXAMPLES` sets the number of cases per caller (CI runs a few hundred; the long run in the README
sets more). Prints the cases run and how long they took."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes

from graphql import print_schema
from src.graphql.masking import UNEXPECTED
from src.graphql.schema import build_schema
from tests.conftest import NO_RATE_LIMITS, keel_serve

pytestmark = [pytest.mark.slow, pytest.mark.faults]
SDL = print_schema(build_schema()._schema)
TEXT = st.text(max_size=40)
SCALARS = {  # values the fuzzer may write inline for Keel's own scalars, valid or not
    "DateTime": st.one_of(st.just("2026-01-02T03:04:05+00:00"), TEXT).map(nodes.String),
    "Date": st.one_of(st.just("2026-01-02"), TEXT).map(nodes.String),
    "JSON": st.one_of(TEXT.map(nodes.String), st.integers().map(nodes.Int)),
    "Long": st.integers(-(2**70), 2**70).map(nodes.Int),
    "Upload": TEXT.map(nodes.String),
}
EXAMPLES = int(os.environ.get("KEEL_FUZZ_EXAMPLES", "150"))


def operations(known_ids: list[str]) -> st.SearchStrategy[str]:
    """Ids are the caller's own (so the fuzzer gets past "not found" into the use cases) or anything."""
    ids = st.one_of(st.sampled_from(known_ids), st.uuids().map(str), TEXT) if known_ids else TEXT
    return from_schema(SDL, custom_scalars={**SCALARS, "ID": ids.map(nodes.String)})


@pytest.fixture(scope="module")
def server(test_env):
    env = {**test_env, **{f"KEEL_{name.upper()}": str(value) for name, value in NO_RATE_LIMITS.items()}}
    with keel_serve(env) as (base, _):
        yield base


PASSWORD = "a long enough pass phrase"


def ask(client: httpx.Client, headers: dict[str, str], query: str, **variables) -> dict:
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers).json()["data"]


def session(client: httpx.Client, email: str, new: bool) -> dict[str, str]:
    """Headers of a fresh session (the fuzzer may sign out or revoke every session)."""
    field = "signUp" if new else "signIn"
    answer = ask(client, {}, f"mutation($e: String!, $p: String!) {{ {field}(email: $e, password: $p) "
                             "{ ... on AuthPayload { accessToken } } }", e=email, p=PASSWORD)
    return {"Authorization": f"Bearer {answer[field]['accessToken']}"}


def own_ids(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    """The ids the account owns: its workspace, itself, a conversation, an API key."""
    [workspace] = ask(client, headers, "{ workspaces { id } }")["workspaces"]
    created = ask(client, headers, """mutation($w: ID!) {
        createConversation(workspaceId: $w, title: "fuzz") { ... on Conversation { id } }
        createApiKey(workspaceId: $w, name: "fuzz", scopes: [CONTENT_READ]) { ... on CreatedApiKey { apiKey { id } } }
    }""", w=workspace["id"])
    return [workspace["id"], ask(client, headers, "{ me { id } }")["me"]["id"],
            created["createConversation"]["id"], created["createApiKey"]["apiKey"]["id"]]


@pytest.mark.parametrize("caller", ["anonymous", "signed-in"])
def test_no_generated_operation_gets_a_server_error(server, caller):
    found: list[tuple[str, str]] = []
    outcomes: Counter[str] = Counter()
    with httpx.Client(base_url=server, timeout=30) as client:
        email, headers, ids = f"fuzz-{time.monotonic_ns()}@example.com", {}, []
        if caller == "signed-in":
            headers = session(client, email, new=True)
            ids = own_ids(client, headers)
        started = time.monotonic()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(operations(ids))
        def send(operation: str) -> None:
            response = client.post("/graphql", json={"query": operation}, headers=headers)
            errors = response.json().get("errors") if response.headers.get("content-type", "").startswith(
                "application/json") else None
            codes = {(error.get("extensions") or {}).get("code", "none") for error in errors or []}
            outcomes[f"{response.status_code} {'/'.join(sorted(codes)) or 'data'}"] += 1
            if response.status_code >= 500 or UNEXPECTED in response.text:
                found.append((operation, response.text[:500]))
            if headers and "UNAUTHENTICATED" in codes:
                headers.update(session(client, email, new=False))

        send()
    print(f"\n{caller} ({len(ids)} own ids): {sum(outcomes.values())} cases in {time.monotonic() - started:.0f} s, "
          f"answers {dict(outcomes.most_common())}")
    assert not found, json.dumps(found[:5], indent=1)
