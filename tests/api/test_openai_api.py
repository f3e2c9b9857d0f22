"""The OpenAI-compatible API driven by the official `openai` Python SDK against `keel serve` (its own process),
with the providers replaced by local fakes of their wire formats: streaming and not, usage, the RAG model,
embeddings, errors in OpenAI's envelope and statuses, a client that goes away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
from sqlalchemy import text

from src.container import build_container, shutdown
from tests.api.test_conversation import GLACIERS
from tests.conftest import keel_serve, wait_for
from tests.conversation_helpers import owner_of, ready_documents, used_today
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.openai_api import FakeOpenAI

SIGN_UP = """mutation($e: String!) { signUp(email: $e, password: "a long passphrase 42") {
  ... on AuthPayload { accessToken user { id workspaces { id } } } } }"""
CREATE_KEY = """mutation($w: ID!, $s: [Permission!]!, $r: Int) { createApiKey(workspaceId: $w, name: "sdk", scopes: $s,
  requestsPerMinute: $r) { ... on CreatedApiKey { secret } ... on Error { code message } } }"""
USAGE = """query($w: ID!) { workspaceUsage(workspaceId: $w) {
  ... on UsageReportType { days { model channel requests } } } }"""
WRITE = ["CONTENT_READ", "CONTENT_WRITE"]


@pytest.fixture(scope="module")
def keel(test_env) -> Iterator[tuple[str, FakeOpenAI]]:
    """`keel serve` with OpenAI and Anthropic replaced by local fakes; yields its base URL and the OpenAI fake."""
    openai_fake, anthropic_fake = FakeOpenAI(), FakeAnthropic()
    with openai_fake.serve() as served_openai, anthropic_fake.serve() as served_anthropic:
        env = {**test_env, "KEEL_OPENAI_API_KEY": openai_fake.api_key,
               "KEEL_OPENAI_BASE_URL": served_openai.url + "/v1", "KEEL_ANTHROPIC_API_KEY": anthropic_fake.api_key,
               "KEEL_ANTHROPIC_BASE_URL": served_anthropic.url, "KEEL_CHAT_RETRY_BASE_SECONDS": "0.05",
               "KEEL_CHAT_RESUME_GRACE_SECONDS": "30"}
        with keel_serve(env) as (base, _):
            yield base, openai_fake


def account(base: str, scopes: list[str] = WRITE, requests_per_minute: int | None = None) -> tuple[str, str, str]:
    """A new account's (API key, workspace id, access token)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        signed = http.post("/graphql", json={"query": SIGN_UP, "variables": {
            "e": f"sdk-{uuid.uuid4().hex[:10]}@example.com"}}).json()["data"]["signUp"]
        token, workspace = signed["accessToken"], signed["user"]["workspaces"][0]["id"]
        created = http.post("/graphql", headers={"authorization": f"Bearer {token}"}, json={
            "query": CREATE_KEY, "variables": {"w": workspace, "s": scopes, "r": requests_per_minute}}).json()
    return created["data"]["createApiKey"]["secret"], workspace, token


def sdk(base: str, key: str, **options) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=options.pop("max_retries", 0), **options)


def test_streaming_and_whole_completions_with_usage_recorded_as_openai(keel, settings):
    base, openai_fake = keel
    key, workspace, token = account(base)
    client = sdk(base, key)
    listed = [model.id for model in client.models.list()]
    assert "gpt-4o-mini" in listed and "keel-rag" in listed and "claude-opus-4-6" not in listed  # the free plan

    stream = client.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "system", "content": "Be brief."},
                                                      {"role": "user", "content": "How do fjords form?"}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == openai_fake.chat.reply
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(openai_fake.chat.tokens())
    sent = openai_fake.chat.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}  # the client's prompt, as sent

    whole = client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": [{"type": "text", "text": "Again?"}]}], max_tokens=50)
    assert whole.choices[0].message.content == openai_fake.chat.reply and whole.usage.total_tokens > 0
    assert whole.object == "chat.completion" and whole.choices[0].finish_reason == "stop"

    with httpx.Client(base_url=base, timeout=30) as http:
        days = http.post("/graphql", headers={"authorization": f"Bearer {token}"}, json={
            "query": USAGE, "variables": {"w": workspace}}).json()["data"]["workspaceUsage"]["days"]
    assert {"model": "gpt-4o-mini", "channel": "openai", "requests": 2} in days


def test_the_rag_model_answers_from_the_workspaces_documents_with_sources(keel, settings):
    base, _ = keel
    key, workspace, _ = account(base)
    asyncio.run(_with_documents(settings, workspace))
    client = sdk(base, key)
    whole = client.chat.completions.create(model="keel-rag", messages=[
        {"role": "user", "content": "How do glaciers make fjords?"}])
    extension = whole.model_extra["keel"]
    assert extension["sources"] and extension["sources"][0]["title"] == "Glaciers"
    assert whole.choices[0].message.content and whole.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model="keel-rag", stream=True, messages=[
        {"role": "user", "content": "And dunes?"}], extra_body={"keel": {
            "conversation_id": extension["conversation_id"]}}))
    final = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason][-1]
    assert final.model_extra["keel"]["conversation_id"] == extension["conversation_id"]  # the same conversation
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    other_key, _, _ = account(base)  # another workspace's key cannot continue this conversation
    with pytest.raises(openai.NotFoundError):
        sdk(base, other_key).chat.completions.create(model="keel-rag", messages=[{"role": "user", "content": "?"}],
                                                     extra_body={"keel": {"conversation_id": extension[
                                                         "conversation_id"]}})


def test_errors_come_in_openais_envelope_and_statuses(keel, settings):
    base, _ = keel
    key, workspace, _ = account(base)
    with pytest.raises(openai.AuthenticationError) as bad_key:
        sdk(base, "keel_not_a_key").models.list()
    assert bad_key.value.code == "invalid_api_key" and bad_key.value.status_code == 401
    client = sdk(base, key)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert empty.value.body["param"] == "messages"
    read_only, _, _ = account(base, ["CONTENT_READ"])
    with pytest.raises(openai.PermissionDeniedError):
        sdk(base, read_only).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    asyncio.run(_spent(settings, workspace, 50_000))  # the free plan's daily tokens
    with pytest.raises(openai.RateLimitError) as capped:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert capped.value.code == "insufficient_quota" and capped.value.body["param"] == "daily_tokens"
    limited, _, _ = account(base, WRITE, requests_per_minute=25)
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(30):
            sdk(base, limited).models.list()
    assert refused.value.code == "rate_limit_exceeded" and int(refused.value.response.headers["retry-after"]) >= 1


def test_a_client_that_goes_away_cancels_upstream_and_its_usage_is_settled(keel, settings):
    base, openai_fake = keel
    key, workspace, _ = account(base)
    openai_fake.chat.token_delay = 0.2
    disconnected = openai_fake.chat.disconnected
    try:
        stream = sdk(base, key).chat.completions.create(model="gpt-4o-mini", stream=True,
                                                        messages=[{"role": "user", "content": "Long answer?"}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        stream.close()
        wait_for(lambda: openai_fake.chat.disconnected > disconnected, timeout=30)
    finally:
        openai_fake.chat.token_delay = 0.0
    assert wait_for(lambda: asyncio.run(_settled(settings, workspace)), timeout=30)


def test_embeddings_come_from_the_workspaces_embedding_model(keel):
    base, _ = keel
    key, _, _ = account(base)
    client = sdk(base, key)
    embedded = client.embeddings.create(model="local/all-MiniLM-L6-v2", input=["glaciers", "dunes"])
    assert [len(item.embedding) for item in embedded.data] == [384, 384]
    assert embedded.model == "local/all-MiniLM-L6-v2" and embedded.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


async def _with_documents(settings, workspace: str) -> None:
    container = build_container(settings)
    try:
        await ready_documents(container, uuid.UUID(workspace), GLACIERS)
    finally:
        await shutdown(container)


async def _spent(settings, workspace: str, tokens: int) -> None:
    container = build_container(settings)
    try:
        owner = await owner_of(container, uuid.UUID(workspace))
        await used_today(container, uuid.UUID(workspace), owner, tokens)
    finally:
        await shutdown(container)


async def _settled(settings, workspace: str) -> bool:
    container = build_container(settings)
    try:
        async with container.engine().connect() as db:
            rows = (await db.execute(text(
                "SELECT count(*) FILTER (WHERE settled_at IS NULL), count(*) FROM usage_records "
                "WHERE workspace_id = :w AND channel = 'openai'"), {"w": uuid.UUID(workspace)})).one()
        return rows[0] == 0 and rows[1] == 1
    finally:
        await shutdown(container)

