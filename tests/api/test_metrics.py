"""What /metrics tells an operator after real traffic: model calls (retries, fallbacks, tokens and cost equal to
the ledger), budgets, retrieval, GraphQL operations, documents and queues; and who may read it."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from src.container import build_container, shutdown
from src.core.knowledge.documents import INGEST_JOB
from src.main import create_app
from tests.api.test_conversation import GLACIERS, answer_of, app_with_providers, chat, with_providers
from tests.api.test_knowledge import account, tag, upload, wait_until_settled
from tests.conftest import REPO_ROOT, asgi_client, graphql, signed_up, start_worker, stop_worker
from tests.conversation_helpers import ids, on_plan, ready_documents, used_today
from tests.net import free_port

RATE = "mutation($w: ID!, $m: ID!) { rateAnswer(workspaceId: $w, messageId: $m, rating: DOWN) { __typename } }"
SEARCH = """query($w: ID!, $q: String!) { search(workspaceId: $w, query: $q) { __typename
  ... on SearchResults { hits { score } } } }"""


def samples(exposition: str) -> dict[tuple[str, frozenset], float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist (nothing counted yet)."""
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape_worker(port: int) -> dict:
    """The workers' metrics. Dramatiq starts the process serving them only once its workers are up, so a job
    can finish before the endpoint listens: wait for it (bounded)."""
    async with httpx.AsyncClient() as http, asyncio.timeout(30):
        while True:
            try:
                return samples((await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text)
            except httpx.ConnectError:
                await asyncio.sleep(0.2)


async def scrape(client, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return samples(response.text)


@pytest.fixture
async def metered(settings, fakes):
    async with app_with_providers(settings, fakes, chat_max_attempts=2, metrics_token="operator-secret") as client:
        yield client


async def test_a_chat_with_a_fallback_and_a_search_are_counted_as_they_happened(metered, fakes):
    openai_fake, anthropic_fake = fakes
    account = await signed_up(metered)
    _, workspace_id = ids(account)
    await on_plan(metered.container, workspace_id, "pro")
    await ready_documents(metered.container, workspace_id, GLACIERS)
    anthropic_fake.chat.fail_next(2, 500)  # both attempts on the plan's first model fail: gpt-4o answers
    message = answer_of(await chat(metered.app, account["accessToken"], str(workspace_id), "Fjords?"))
    assert message["model"] == "gpt-4o"
    hits = await graphql(metered, SEARCH, token=account["accessToken"], w=str(workspace_id), q="dunes")
    assert hits["data"]["search"]["__typename"] == "SearchResults"
    found = await scrape(metered, "operator-secret")

    claude = {"provider": "anthropic", "model": "claude-sonnet-4-6", "template": "rag_answer@1"}
    gpt = {"provider": "openai", "model": "gpt-4o", "template": "rag_answer@1"}
    assert value(found, "keel_llm_requests_total", **claude, outcome="error") == 2
    assert value(found, "keel_llm_errors_total", **claude, code="500") == 2
    assert value(found, "keel_llm_retries_total", **claude) == 1
    assert value(found, "keel_llm_requests_total", **gpt, outcome="ok") == 1
    assert value(found, "keel_llm_fallbacks_total", template="rag_answer@1", from_model="claude-sonnet-4-6",
                 to_model="gpt-4o") == 1
    # tokens and cost are the settled usage: the same figures as the stored answer and the ledger
    assert value(found, "keel_llm_tokens_total", **gpt, direction="input") == message["promptTokens"]
    assert value(found, "keel_llm_tokens_total", **gpt, direction="output") == message["completionTokens"]
    assert value(found, "keel_llm_cost_usd_total", **gpt) == pytest.approx(message["costUsd"])
    first_token = value(found, "keel_llm_time_to_first_token_seconds_sum", provider="openai", model="gpt-4o")
    assert value(found, "keel_llm_time_to_first_token_seconds_count", provider="openai", model="gpt-4o") == 1
    assert 0 < first_token <= value(found, "keel_llm_request_duration_seconds_sum", provider="openai", model="gpt-4o")
    assert value(found, "keel_llm_circuit_open", model="claude-sonnet-4-6") == 0  # 1 failure of 5 needed
    # the chat's retrieval and the search, both hybrid
    assert value(found, "keel_retrieval_seconds_count", mode="hybrid") == 2
    assert value(found, "keel_graphql_operations_total", operation="search", type="query", outcome="ok") == 1
    assert value(found, "keel_graphql_operations_total", operation="chat", type="subscription", outcome="ok") == 1
    assert value(found, "keel_graphql_operation_seconds_count", operation="search", type="query") == 1
    assert value(found, "keel_live_answers") == 0 and value(found, "keel_db_pool_connections", state="waiting") == 0
    async with metered.container.engine().connect() as db:
        ready = (await db.execute(text("SELECT count(*) FROM documents WHERE status = 'ready'"))).scalar_one()
    assert value(found, "keel_documents", status="ready") == ready >= 2


async def test_budget_caps_and_client_operation_names_stay_bounded(metered, fakes):
    account = await signed_up(metered)
    user_id, workspace_id = ids(account)
    await on_plan(metered.container, workspace_id, "pro")
    await used_today(metered.container, workspace_id, user_id, 1_600_000)  # past the soft cap (1.5M)
    assert answer_of(await chat(metered.app, account["accessToken"], str(workspace_id), "Fjords?"))["model"] == \
        "gpt-4o-mini"
    await used_today(metered.container, workspace_id, user_id, 500_000)  # past the hard cap (2M)
    events = await chat(metered.app, account["accessToken"], str(workspace_id), "Fjords?")
    assert events[0]["error"]["code"] == "quota_exceeded"
    for name in ("Anything1", "Anything2"):  # names and unknown fields do not become series
        await graphql(metered, f"query {name} {{ me {{ id }} }}", token=account["accessToken"])
    await graphql(metered, "query { noSuchField }", token=account["accessToken"])
    found = await scrape(metered, "operator-secret")
    assert value(found, "keel_budget_soft_capped_total") == 1
    assert value(found, "keel_budget_refusals_total", limit="daily_tokens") == 1
    assert value(found, "keel_graphql_operations_total", operation="me", type="query", outcome="ok") == 2
    assert value(found, "keel_graphql_operations_total", operation="other", type="query", outcome="error") == 1
    assert not [key for key in found if "Anything" in str(key)]


async def test_only_the_operator_reads_the_metrics_when_a_token_is_set(metered):
    assert (await metered.get("/metrics")).status_code == 403
    wrong = await metered.get("/metrics", headers={"authorization": "Bearer guess"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    assert "keel_llm_requests" in (await metered.get("/metrics", headers={
        "authorization": "Bearer operator-secret"})).text


async def test_the_workers_metrics_show_the_ingestion_they_ran(client, test_env):
    token, ws = await account(client)
    word = tag()
    # uploaded before any worker runs: the job waits in the queue, and the API's scrape shows it
    uploaded = [await upload(client, token, ws, f"note{i}.md", f"# Note {i}\n\n{word} glaciers {i}.".encode(),
                             "text/markdown") for i in range(2)]
    await asyncio.sleep(1.1)
    waiting = await scrape(client)
    depths = {dict(labels)["queue"]: sample for (name, labels), sample in waiting.items()
              if name == "keel_job_queue_depth"}
    ages = [sample for (name, _), sample in waiting.items() if name == "keel_job_queue_oldest_age_seconds"]
    assert sum(depths.values()) >= 2 and max(ages) >= 1.0
    port = free_port()
    worker = start_worker({**test_env, "KEEL_WORKER_METRICS_PORT": str(port)})
    try:
        settled = [await wait_until_settled(client, token, ws, answer["documents"][0]["document"]["id"])
                   for answer in uploaded]
        assert [document["status"] for document in settled] == ["READY", "READY"]
        found = await scrape_worker(port)
    finally:
        stop_worker(worker)
    runs = value(found, "keel_job_runs_total", actor=INGEST_JOB, outcome="ok")
    assert runs >= 2 and value(found, "keel_job_run_seconds_count", actor=INGEST_JOB) == runs + value(
        found, "keel_job_runs_total", actor=INGEST_JOB, outcome="failed")
    embedded = sum(sample for (name, _), sample in found.items() if name == "keel_embedded_chunks_total")
    assert embedded >= sum(document["chunkCount"] for document in settled) >= 2


DASHBOARD = REPO_ROOT / "docker" / "grafana" / "dashboards" / "keel.json"


def dashboard_metrics() -> set[str]:
    """Every Keel series the committed Grafana dashboard queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\bkeel_[a-z0-9_]+", target["expr"])}


async def test_every_series_the_dashboard_queries_exists_after_real_traffic(settings, fakes, test_env):
    """A chat that falls back, a soft-capped and a refused one, a rating, searches (one finding nothing), a refused
    anonymous request, and an ingestion on a real worker: then the API's and the worker's /metrics together
    carry every series on the dashboard."""
    configured = with_providers(settings, fakes, chat_max_attempts=2, rate_anonymous_per_minute=60)
    container = build_container(configured)
    port = free_port()
    worker = start_worker({**test_env, "KEEL_WORKER_METRICS_PORT": str(port)})
    try:
        async with asgi_client(create_app(configured, container)) as client:
            app = client._transport.app
            account = await signed_up(client)
            user_id, workspace_id = ids(account)
            token, w = account["accessToken"], str(workspace_id)
            await on_plan(container, workspace_id, "pro")
            await ready_documents(container, workspace_id, GLACIERS)
            fakes[1].chat.fail_next(2, 503)
            message = answer_of(await chat(app, token, w, "Fjords?"))
            await used_today(container, workspace_id, user_id, 1_600_000)
            answer_of(await chat(app, token, w, "Fjords again?"))
            await used_today(container, workspace_id, user_id, 500_000)
            await chat(app, token, w, "Refused?")
            await graphql(client, RATE, token=token, w=w, m=message["id"])
            await graphql(client, SEARCH.replace("query: $q", "query: $q, mode: KEYWORD"), token=token, w=w,
                          q="zzqqxxnothing")
            refused = [(await client.post("/graphql", json={"query": "{ plans { name } }"})).status_code
                       for _ in range(70)]
            assert 429 in refused
            uploaded = await upload(client, token, w, "n.md", b"# N\n\nglaciers", "text/markdown")
            settled = await wait_until_settled(client, token, w, uploaded["documents"][0]["document"]["id"])
            assert settled["status"] == "READY"
            api = await scrape(client)
        workers = await scrape_worker(port)
    finally:
        stop_worker(worker)
        await shutdown(container)
    present = {name for name, _ in (*api, *workers)}
    missing = {name for name in dashboard_metrics() if name not in present}
    assert len(dashboard_metrics()) > 25 and missing == set()
