"""The knowledge graph through GraphQL: documents uploaded over the API, ingested and turned into a graph by
a real worker, then entity search, neighbours, chunks, paths, recent entities, graph search and errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_knowledge import DELETE, account, search, upload
from tests.conftest import graphql, start_worker, stop_worker

ENTITIES = """query($ws: ID!, $q: String!) { entities(workspaceId: $ws, search: $q) {
  __typename ... on EntityList { items { id name type aliases } } ... on Error { code message } } }"""
ENTITY = """query($ws: ID!, $id: ID!, $depth: Int!) { entity(workspaceId: $ws, id: $id) {
  __typename ... on Error { code message }
  ... on Entity { name
    neighbours(depth: $depth) { __typename ... on Neighbours { items { entity { name } predicate depth } }
                                ... on Error { code message } }
    chunks { __typename ... on MentioningChunks { items { documentTitle highlights } } } } } }"""
PATH = """query($ws: ID!, $a: ID!, $b: ID!) { path(workspaceId: $ws, from: $a, to: $b) {
  __typename ... on EntityPath { found steps { entity { name } predicate } } ... on Error { code message } } }"""
RECENT = """query($ws: ID!, $u: ID!) { recentEntities(workspaceId: $ws, uploadedBy: $u) {
  __typename ... on EntityList { items { name } } } }"""
ME = "{ me { id } }"
TEXTS = {
    "inflammation.md": "# Inflammation\n\nTumor necrosis factor (TNF) increases insulin resistance in adipose "
                       "tissue. Macrophages secrete TNF during chronic inflammation.",
    "muscle.md": "# Muscle\n\nTNF inhibits glucose uptake in skeletal muscle. Exercise improves glucose uptake.",
}


@pytest.fixture(scope="module")
def graph_worker(test_env):
    process = start_worker(test_env, threads=2)
    yield process
    stop_worker(process)


async def _entities(client, token, ws, text) -> list[dict]:
    return (await graphql(client, ENTITIES, token=token, ws=ws, q=text))["data"]["entities"]["items"]


async def _entity(client, token, ws, name) -> dict:
    return next(e for e in await _entities(client, token, ws, name) if e["name"] == name)


async def _graph_built(client, token, ws, text, timeout=180) -> list[dict]:
    async with asyncio.timeout(timeout):
        while not (found := await _entities(client, token, ws, text)):
            await asyncio.sleep(0.3)
    return found


async def test_a_worker_builds_the_graph_that_graphql_explores(client, graph_worker):
    token, ws = await account(client)
    ids = {}
    for name, body in TEXTS.items():
        answer = await upload(client, token, ws, name, body.encode(), "text/markdown")
        ids[name] = answer["documents"][0]["document"]["id"]
    await _graph_built(client, token, ws, "glucose uptake")
    [tnf] = await _graph_built(client, token, ws, "necrosis")
    # one entity for both documents, named as the document built first names it
    assert {tnf["name"], *tnf["aliases"]} == {"Tumor necrosis factor", "TNF"}

    entity = (await graphql(client, ENTITY, token=token, ws=ws, id=tnf["id"], depth=1))["data"]["entity"]
    neighbours = {n["entity"]["name"]: n["predicate"] for n in entity["neighbours"]["items"]}
    assert neighbours["insulin resistance"] == "increases" and neighbours["glucose uptake"] == "inhibits"
    assert {c["documentTitle"] for c in entity["chunks"]["items"]} == {"inflammation.md", "muscle.md"}

    resistance = await _entity(client, token, ws, "insulin resistance")
    uptake = await _entity(client, token, ws, "glucose uptake")
    path = (await graphql(client, PATH, token=token, ws=ws, a=resistance["id"], b=uptake["id"]))["data"]["path"]
    assert path["found"] and [s["entity"]["name"] for s in path["steps"]] == [
        "insulin resistance", tnf["name"], "glucose uptake"]

    me = (await graphql(client, ME, token=token))["data"]["me"]["id"]
    recent = (await graphql(client, RECENT, token=token, ws=ws, u=me))["data"]["recentEntities"]["items"]
    assert tnf["name"] in {e["name"] for e in recent}

    hits = await search(client, token, ws, "insulin resistance adipose", mode="GRAPH", k=2)
    assert [hit["documentTitle"] for hit in hits["hits"]] == ["inflammation.md", "muscle.md"]

    deleted = (await graphql(client, DELETE, token=token, ws=ws, id=ids["inflammation.md"]))["data"]
    assert deleted["deleteDocument"]["__typename"] == "DeletedDocument"
    assert await _entities(client, token, ws, "insulin resistance") == []
    assert [e["id"] for e in await _entities(client, token, ws, "TNF")] == [tnf["id"]]


async def test_bad_graph_input_answers_typed_errors(client):
    token, ws = await account(client)
    empty = (await graphql(client, ENTITIES, token=token, ws=ws, q="  "))["data"]["entities"]
    assert empty["__typename"] == "InvalidInputError"
    missing = (await graphql(client, ENTITY, token=token, ws=ws, id="6f1c1b7e-6a70-4c55-9b43-3c0e5f0b9a11",
                             depth=1))["data"]["entity"]
    assert missing["__typename"] == "NotFoundError"
    bad_id = (await graphql(client, PATH, token=token, ws=ws, a="nope", b="nope"))["data"]["path"]
    assert bad_id["__typename"] == "InvalidInputError"
