"""The knowledge graph against the real Postgres, once on Apache AGE and once on plain tables (the same
tests): extraction → graph → queries, a retried build, deletion, workspace isolation, Cypher injection; and
the LLM extractor through the real OpenAI SDK against the local fake."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from src.adapters.postgres.knowledge.graph_age import graph_name
from src.container import build_container, shutdown
from src.core.knowledge.graph_queries import expansion_scores
from src.core.knowledge.search import SearchRequest
from src.ports.graph import DocumentGraph, Entity, Relation
from src.ports.knowledge import SearchFilters, SearchMode
from tests.conversation_helpers import account, ask, member, owner_of, ready_documents

DOCUMENTS = {
    "Inflammation": "# Inflammation\n\nTumor necrosis factor (TNF) increases insulin resistance in adipose tissue. "
                    "Macrophages secrete TNF during chronic inflammation.",
    "Muscle": "# Muscle\n\nTNF inhibits glucose uptake in skeletal muscle. Exercise improves glucose uptake.",
    "Glaciers": "# Glaciers\n\nGlacial erosion carves fjords along the Norwegian coastline.",
}
CRAFTED = ["O'Brien", "a $$ b", "x'}) MATCH (n) DETACH DELETE n //", "$$) AS (a agtype); DROP TABLE chunks; --",
           "\\'; SELECT 1; --", "}}{{ ]]", "名前 with ünïcode"]


@pytest.fixture(params=["age", "tables"])
async def graph_container(request, settings):
    container = build_container(settings.model_copy(update={"graph_store": request.param}))
    yield container
    await shutdown(container)


async def _entity_named(container, workspace_id, name) -> Entity:
    owner = member(await owner_of(container, workspace_id))
    found = await container.search_entities().execute(owner, workspace_id, name)
    return next(entity for entity in found if entity.name.lower() == name.lower() or
                name in entity.aliases)


async def test_documents_become_a_graph_that_answers_queries(graph_container):
    container = graph_container
    user_id, workspace_id = await account(container)
    me = member(user_id)
    await ready_documents(container, workspace_id, DOCUMENTS, uploaded_by=user_id)

    tnf = await _entity_named(container, workspace_id, "TNF")  # the abbreviation merged into its long form
    assert tnf.name == "Tumor necrosis factor" and "TNF" in tnf.aliases
    explore = container.explore_entity()
    neighbours = {n.entity.name: (n.predicate, n.depth) for n in await explore.neighbours(me, workspace_id, tnf.id, 1)}
    assert neighbours["insulin resistance"] == ("increases", 1)
    assert neighbours["glucose uptake"] == ("inhibits", 1)  # from the other document: one TNF entity for both
    chunks = await explore.chunks(me, workspace_id, tnf.id)
    assert {c.document_title for c in chunks} == {"Inflammation", "Muscle"}

    resistance = await _entity_named(container, workspace_id, "insulin resistance")
    uptake = await _entity_named(container, workspace_id, "glucose uptake")
    path = await container.find_path().execute(me, workspace_id, resistance.id, uptake.id)
    assert [step.entity.name for step in path] == ["insulin resistance", "Tumor necrosis factor", "glucose uptake"]
    assert [step.predicate for step in path] == [None, "increases", "inhibits"]
    fjords = await _entity_named(container, workspace_id, "Norwegian coastline")
    assert await container.find_path().execute(me, workspace_id, tnf.id, fjords.id) == []

    recent = await container.recent_entities().execute(me, workspace_id, user_id, days=1)
    assert {"Tumor necrosis factor", "Norwegian coastline"} <= {entity.name for entity in recent}
    assert await container.recent_entities().execute(me, workspace_id, uuid.uuid4(), days=1) == []


async def test_graph_search_brings_in_chunks_linked_through_entities(graph_container):
    container = graph_container
    user_id, workspace_id = await account(container)
    await ready_documents(container, workspace_id, DOCUMENTS, uploaded_by=user_id)
    search = container.search()
    hits = await search.execute(SearchRequest(workspace_id, "insulin resistance adipose", SearchMode.HYBRID, k=1))
    assert hits[0].chunk.document_title == "Inflammation"
    async with container.knowledge_uow() as uow:
        linked = await expansion_scores(uow.graph, workspace_id, [hits[0].chunk.chunk_id], hops=1, fan_out=10,
                                        hub_mentions=200)
        titles = (await uow.search.views(workspace_id, list(linked), "")).values()
        # TNF, mentioned by both documents, is a hub when hubs start at two mentions: nothing links through it
        through_hubs = await expansion_scores(uow.graph, workspace_id, [hits[0].chunk.chunk_id], hops=1,
                                              fan_out=10, hub_mentions=1)
    assert {view.document_title for view in titles} == {"Muscle"}  # through TNF; never the glaciers
    assert through_hubs == {}
    graph_hits = await search.execute(SearchRequest(workspace_id, "insulin resistance adipose", SearchMode.GRAPH,
                                                    k=3))
    assert [hit.chunk.document_title for hit in graph_hits][:2] == ["Inflammation", "Muscle"]
    only_inflammation = SearchFilters(document_ids=(hits[0].chunk.document_id,))
    filtered = await search.execute(SearchRequest(workspace_id, "insulin resistance adipose", SearchMode.GRAPH,
                                                  k=3, filters=only_inflammation))
    assert {hit.chunk.document_title for hit in filtered} == {"Inflammation"}  # the graph obeys filters too


async def test_a_rebuilt_document_replaces_its_part_and_deletion_removes_it(graph_container):
    container = graph_container
    user_id, workspace_id = await account(container)
    me = member(user_id)
    inflammation, muscle, _ = await ready_documents(container, workspace_id, DOCUMENTS, uploaded_by=user_id)
    tnf = await _entity_named(container, workspace_id, "TNF")
    before = await _graph_counts(container, workspace_id)
    assert await _mention_count(container, workspace_id, tnf) == 2
    await container.build_document_graph().execute([inflammation, muscle])  # a redelivered job
    assert await _graph_counts(container, workspace_id) == before
    assert await _mention_count(container, workspace_id, tnf) == 2  # counted once, not once per build

    await container.delete_document().execute(me, workspace_id, inflammation)
    assert await container.search_entities().execute(me, workspace_id, "insulin resistance") == []  # only there
    assert await _mention_count(container, workspace_id, tnf) == 1  # still mentioned by Muscle
    assert await _dangling_edges(container, workspace_id) == 0
    chunks = await container.explore_entity().chunks(me, workspace_id, tnf.id)
    assert {c.document_title for c in chunks} == {"Muscle"}
    names = {n.entity.name for n in await container.explore_entity().neighbours(me, workspace_id, tnf.id)}
    assert "insulin resistance" not in names and "glucose uptake" in names


async def _dangling_edges(container, workspace_id) -> int:
    """Edges of the workspace's AGE graph whose start or end vertex is gone (the tables store has foreign keys)."""
    async with container.knowledge_uow() as uow:
        graph = graph_name(workspace_id)
        exists = await uow.db.execute(text("SELECT count(*) FROM ag_graph WHERE name = :g"), {"g": graph})
        if not exists.scalar():
            return 0
        return (await uow.db.execute(text(f"""
            SELECT count(*) FROM {graph}._ag_label_edge e
            WHERE NOT EXISTS (SELECT 1 FROM {graph}._ag_label_vertex v WHERE v.id = e.start_id)
               OR NOT EXISTS (SELECT 1 FROM {graph}._ag_label_vertex v WHERE v.id = e.end_id)"""))).scalar()


async def _mention_count(container, workspace_id, entity: Entity) -> int:
    async with container.knowledge_uow() as uow:
        return (await uow.graph.mention_counts(workspace_id, [entity.id]))[entity.id]


async def test_traversals_do_not_go_through_hub_entities(settings):
    container = build_container(settings.model_copy(update={"graph_hub_mentions": 1}))
    try:
        user_id, workspace_id = await account(container)
        me = member(user_id)
        await ready_documents(container, workspace_id, DOCUMENTS, uploaded_by=user_id)
        tnf = await _entity_named(container, workspace_id, "TNF")  # both documents mention it: a hub here
        resistance = await _entity_named(container, workspace_id, "insulin resistance")
        uptake = await _entity_named(container, workspace_id, "glucose uptake")
        assert await container.find_path().execute(me, workspace_id, resistance.id, uptake.id) == []
        reached = await container.explore_entity().neighbours(me, workspace_id, resistance.id, 2)
        two_hops = {n.entity.name for n in reached}
        assert "Tumor necrosis factor" in two_hops and "glucose uptake" not in two_hops  # listed, not gone through
        path = await container.find_path().execute(me, workspace_id, tnf.id, uptake.id)  # a hub may be an end
        assert [step.entity.name for step in path] == ["Tumor necrosis factor", "glucose uptake"]
    finally:
        await shutdown(container)


async def _graph_counts(container, workspace_id) -> tuple[int, int, int]:
    """(entities, mentions, relations) of the workspace, as the graph store reports them."""
    async with container.knowledge_uow() as uow:
        entities = (await uow.db.execute(text("SELECT id FROM kg_entities WHERE workspace_id = :w"),
                                              {"w": workspace_id})).scalars().all()
        mentions = await uow.graph.mentioning(workspace_id, list(entities), 1000)
        relations = await uow.graph.related(workspace_id, list(entities), 1000)
    return len(entities), len(mentions), len(relations)


async def test_crafted_names_are_data_and_never_reach_another_workspace(graph_container):
    container = graph_container
    user_a, workspace_a = await account(container)
    user_b, workspace_b = await account(container)
    await ready_documents(container, workspace_a, {"A": "# A\n\nSecret alpha compound binds receptor kinase."})
    await ready_documents(container, workspace_b, {"B": "# B\n\nPublic beta protein regulates receptor kinase."})
    async with container.knowledge_uow() as uow:
        chunk_b = (await uow.db.execute(text("SELECT c.id, c.document_id FROM chunks c JOIN documents d ON "
                                                  "d.id = c.document_id WHERE d.workspace_id = :w"),
                                             {"w": workspace_b})).one()
        crafted = [Entity(uuid.uuid4(), workspace_b, name.lower(), name, "term") for name in CRAFTED]
        await uow.graph.lock(workspace_b)
        await uow.graph.write_document(DocumentGraph(
            workspace_b, chunk_b.document_id, (chunk_b.id,), tuple(crafted),
            tuple((chunk_b.id, entity.id) for entity in crafted),
            (Relation(crafted[0].id, "knows'}) DETACH DELETE n //", crafted[1].id, chunk_b.id),),
            tuple((entity.key, entity.id) for entity in crafted)))
        await uow.commit()
    for name in CRAFTED:  # stored verbatim, found verbatim, only in B
        assert [e.name for e in await container.search_entities().execute(member(user_b), workspace_b, name)] == [name]
        assert await container.search_entities().execute(member(user_a), workspace_a, name) == []
    found = await container.explore_entity().neighbours(member(user_b), workspace_b, crafted[0].id)
    assert [(n.entity.name, n.predicate) for n in found] == [(CRAFTED[1], "knows'}) DETACH DELETE n //")]
    # A's graph is intact and B's ids lead nowhere from A
    assert [e.name for e in await container.search_entities().execute(member(user_a), workspace_a, "alpha")] == [
        "Secret alpha compound"]
    assert await container.explore_entity().neighbours(member(user_a), workspace_a, crafted[0].id) == []
    assert await container.explore_entity().chunks(member(user_a), workspace_a, crafted[0].id) == []
    async with container.knowledge_uow() as uow:
        assert await uow.graph.mentioning(workspace_a, [c.id for c in crafted], 10) == []
        assert await uow.graph.entities(workspace_a, [c.id for c in crafted]) == {}
        assert (await uow.db.execute(text("SELECT count(*) FROM chunks"))).scalar_one() > 0
    since = datetime.now(UTC) - timedelta(days=1)
    async with container.knowledge_uow() as uow:
        assert await uow.graph.entities_in_documents_by(workspace_a, user_b, since, 10) == []


async def test_the_llm_extractor_uses_structured_output_and_falls_back_offline(settings, fake_openai):
    fake_openai.chat.structured_reply = {
        "entities": [{"name": "Tumor necrosis factor", "type": "protein", "aliases": ["TNF"]},
                     {"name": "insulin resistance", "type": "condition", "aliases": []}],
        "relations": [{"subject": "TNF", "predicate": "worsens", "object": "insulin resistance"}]}
    container = build_container(settings.model_copy(update={
        "openai_api_key": fake_openai.api_key, "openai_base_url": fake_openai.base_url, "graph_extractor": "llm",
        "graph_extractor_model": "gpt-4o-mini"}))
    try:
        user_id, workspace_id = await account(container)
        me = member(user_id)
        await ready_documents(container, workspace_id, {"Inflammation": DOCUMENTS["Inflammation"]})
        request = fake_openai.chat.requests[-1]
        assert request["response_format"]["json_schema"]["name"] == "knowledge_graph"
        assert "TNF" in request["messages"][-1]["content"]  # the chunk's text was sent
        tnf = await _entity_named(container, workspace_id, "TNF")
        assert (tnf.name, tnf.type) == ("Tumor necrosis factor", "protein")
        [neighbour] = await container.explore_entity().neighbours(me, workspace_id, tnf.id)
        assert (neighbour.entity.name, neighbour.predicate) == ("insulin resistance", "worsens")
        [spent] = await container.usage_report().execute(me, workspace_id, 1, whole_workspace=True)  # on the ledger
        assert spent.model == "gpt-4o-mini" and spent.prompt_tokens > 0 and spent.cost_usd > 0

        fake_openai.chat.fail_next(1, 400)  # the model refuses (not worth a retry): that chunk is extracted offline
        await ready_documents(container, workspace_id, {"Muscle": DOCUMENTS["Muscle"]})
        assert await container.search_entities().execute(me, workspace_id, "skeletal muscle")
    finally:
        await shutdown(container)


async def test_llm_extraction_obeys_the_workspaces_budget(settings, fake_openai, tmp_path):
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps([{"name": "free", "limits": {
        "daily_tokens": 200, "soft_cap_tokens": 200, "max_documents": 10, "max_storage_bytes": 10**6, "seats": 1,
        "models": ["gpt-4o-mini", "offline"], "cheaper_model": "offline"}}]))
    container = build_container(settings.model_copy(update={
        "openai_api_key": fake_openai.api_key, "openai_base_url": fake_openai.base_url, "graph_extractor": "llm",
        "graph_extractor_model": "gpt-4o-mini", "plans_file": plans}))
    try:
        user_id, workspace_id = await account(container)
        await ready_documents(container, workspace_id, {"Muscle": DOCUMENTS["Muscle"]})
        assert fake_openai.chat.requests == []  # past the budget: no model was asked
        assert await container.search_entities().execute(member(user_id), workspace_id, "skeletal muscle")
        async with container.engine().connect() as connection:  # the refused reservation left nothing behind
            assert (await connection.execute(text("SELECT count(*) FROM usage_records WHERE workspace_id = :w"),
                                             {"w": workspace_id})).scalar_one() == 0
    finally:
        await shutdown(container)


async def test_conversation_can_retrieve_through_the_graph(settings):
    container = build_container(settings.model_copy(update={"chat_retrieval_mode": "graph",
                                                            "chat_retrieval_k": 2}))
    try:
        user_id, workspace_id = await account(container)
        await ready_documents(container, workspace_id, DOCUMENTS, uploaded_by=user_id)
        question = "What does insulin resistance in adipose tissue come from?"
        passages = await container.retriever().retrieve(workspace_id, question, 2)  # what the answer is given
        assert [passage.document_title for passage in passages] == ["Inflammation", "Muscle"]
        final, _ = await ask(container, user_id, workspace_id, question)
        assert final.status.value == "complete"
        assert final.sources and {s.document_title for s in final.sources} <= {"Inflammation", "Muscle"}
    finally:
        await shutdown(container)


async def test_a_deleted_workspace_takes_its_graph_with_it(graph_container):
    container = graph_container
    user_id, workspace_id = await account(container)
    await ready_documents(container, workspace_id, {"Muscle": DOCUMENTS["Muscle"]}, uploaded_by=user_id)
    graphs = "SELECT count(*) FROM ag_catalog.ag_graph WHERE name = :name"
    name = f"kg_{workspace_id.hex}"
    async with container.knowledge_uow() as uow:
        before = (await uow.db.execute(text(graphs), {"name": name})).scalar_one()
        await uow.db.execute(text("DELETE FROM workspaces WHERE id = :w"), {"w": workspace_id})
        await uow.commit()
    async with container.knowledge_uow() as uow:
        assert (await uow.db.execute(text(graphs), {"name": name})).scalar_one() == 0
        left = await uow.db.execute(text("SELECT count(*) FROM kg_entities WHERE workspace_id = :w"),
                                         {"w": workspace_id})
        assert left.scalar_one() == 0
    assert before == (1 if container.settings().graph_store == "age" else 0)


async def test_names_spelled_differently_merge_by_embedding_similarity(graph_container):
    container = graph_container
    user_id, workspace_id = await account(container)
    me = member(user_id)
    await ready_documents(container, workspace_id, {
        "US": "# US\n\nTumor necrosis factor drives Alzheimer disease in mice.",
        "UK": "# UK\n\nTumour necrosis factor increases insulin resistance. Alzheimer's disease affects memory."})
    [tnf] = await container.search_entities().execute(me, workspace_id, "necrosis")  # one entity, both spellings
    assert {tnf.name, *tnf.aliases} == {"Tumor necrosis factor", "Tumour necrosis factor"}
    chunks = await container.explore_entity().chunks(me, workspace_id, tnf.id)
    assert {c.document_title for c in chunks} == {"US", "UK"}
    [alzheimer] = await container.search_entities().execute(me, workspace_id, "Alzheimer")
    assert set(alzheimer.aliases) | {alzheimer.name} == {"Alzheimer disease", "Alzheimer's disease"}
    [resistance] = await container.search_entities().execute(me, workspace_id, "insulin")  # not merged with them
    assert resistance.name == "insulin resistance"
