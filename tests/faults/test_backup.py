"""`keel db backup` then `keel db restore` into an empty database: the restored copy answers the same
hybrid search and the same knowledge-graph query (AGE graphs re-pointed at their new schemas); a restore
over data is refused and changes nothing."""

from __future__ import annotations

import pytest

from src.container import build_container, shutdown
from src.core.knowledge.search import SearchRequest
from src.localdb.stack import local_cluster
from src.ports.knowledge import SearchMode
from tests.conftest import fresh_database, run_keel
from tests.conversation_helpers import account, member, ready_documents

pytestmark = [pytest.mark.slow, pytest.mark.faults]
DOCUMENTS = {
    "Inflammation": "# Inflammation\n\nTumor necrosis factor (TNF) increases insulin resistance in adipose tissue.",
    "Muscle": "# Muscle\n\nTNF inhibits glucose uptake in skeletal muscle. Exercise improves glucose uptake.",
    "Glaciers": "# Glaciers\n\nGlacial erosion carves fjords along the Norwegian coastline.",
}


async def what_it_answers(config, workspace_id, user_id) -> tuple[list, dict]:
    container = build_container(config)
    try:
        hits = await container.search().execute(SearchRequest(workspace_id, "what does TNF do to glucose uptake",
                                                              SearchMode.HYBRID, 3))
        [tnf] = [entity for entity in await container.search_entities().execute(member(user_id), workspace_id, "TNF")
                 if "TNF" in entity.aliases]
        neighbours = await container.explore_entity().neighbours(member(user_id), workspace_id, tnf.id, 1)
        return ([(hit.chunk.chunk_id, hit.chunk.text, round(hit.score, 6)) for hit in hits],
                {n.entity.name: n.predicate for n in neighbours})
    finally:
        await shutdown(container)


@pytest.fixture
def source(settings):
    return fresh_database(settings.model_copy(update={"graph_store": "age"}), "backup_source")


async def test_a_backup_restores_into_an_empty_database_that_answers_the_same(source, settings, test_env, tmp_path):
    target = source.model_copy(update={"db_name": f"{settings.db_name}_backup_target"})
    cluster = local_cluster(settings, install=False)
    cluster.psql(f'DROP DATABASE IF EXISTS "{target.db_name}" WITH (FORCE)')
    container = build_container(source)
    try:
        user_id, workspace_id = await account(container)
        await ready_documents(container, workspace_id, DOCUMENTS, uploaded_by=user_id)
    finally:
        await shutdown(container)
    before = await what_it_answers(source, workspace_id, user_id)
    assert before[0] and before[1]["glucose uptake"] == "inhibits"

    env = {**test_env, "KEEL_DB_NAME": source.db_name}
    dump = tmp_path / "keel.dump"
    backed_up = run_keel("db", "backup", str(dump), env=env)
    assert backed_up.returncode == 0 and dump.stat().st_size > 0, backed_up.stderr
    restored = run_keel("db", "restore", str(dump), "--database", target.db_name, env=env)
    assert restored.returncode == 0, restored.stderr
    print(f"\n{backed_up.stderr.strip()}\n{restored.stderr.strip()}")

    assert await what_it_answers(target, workspace_id, user_id) == before

    again = run_keel("db", "restore", str(dump), "--database", target.db_name, env=env)
    assert again.returncode == 1 and "is not empty" in again.stderr and "Traceback" not in again.stderr
    assert await what_it_answers(target, workspace_id, user_id) == before
    missing = run_keel("db", "restore", str(tmp_path / "nothing.dump"), env=env)
    assert missing.returncode == 1 and "is not a file" in missing.stderr
    cluster.psql(f'DROP DATABASE IF EXISTS "{target.db_name}" WITH (FORCE)')
