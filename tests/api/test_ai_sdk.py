"""The AI SDK chat stream driven by the real `ai` npm package (its DefaultChatTransport and stream reader, in
Node, as a useChat frontend) against `keel serve`: an answer read to the end with its sources, one resumed
after the client went away, one stopped."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_openai_api import _with_documents, account
from tests.conftest import keel_serve
from tests.fakes.openai_api import FakeOpenAI

NODE_CLIENTS = Path(__file__).resolve().parents[1] / "node"
CONVERSATION = """query($w: ID!, $id: ID!) { conversation(workspaceId: $w, id: $id) { ... on Conversation {
  messages { role status content } } } }"""


@pytest.fixture(scope="module")
def node_clients() -> Path:
    """The `ai` package from the npm registry, installed once (package-lock.json pins it)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed (`keel test` installs them as root: apt-get install nodejs npm)")
    if not (NODE_CLIENTS / "node_modules" / "ai").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_CLIENTS, check=True, timeout=300,
                       capture_output=True)
    return NODE_CLIENTS


@pytest.fixture(scope="module")
def keel(test_env) -> Iterator[tuple[str, FakeOpenAI]]:
    fake = FakeOpenAI()
    with fake.serve() as served:
        env = {**test_env, "KEEL_OPENAI_API_KEY": fake.api_key, "KEEL_OPENAI_BASE_URL": served.url + "/v1",
               "KEEL_CHAT_RESUME_GRACE_SECONDS": "30"}
        with keel_serve(env) as (base, _):
            yield base, fake


def node(clients: Path, *args: str) -> dict:
    done = subprocess.run(["node", str(clients / "ai_sdk_chat.mjs"), *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def stored(base: str, key: str, workspace: str, chat_id: str) -> list[dict]:
    """The chat as stored: the key's own conversation (a key's conversations are not its creator's)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        return http.post("/graphql", headers={"x-api-key": key}, json={
            "query": CONVERSATION, "variables": {"w": workspace, "id": chat_id}}).json()["data"]["conversation"][
            "messages"]


def test_a_chat_is_read_to_the_end_with_its_sources_and_stored(keel, node_clients, settings):
    base, fake = keel
    key, workspace, _ = account(base)
    asyncio.run(_with_documents(settings, workspace))
    chat_id = str(uuid.uuid4())
    shown = node(node_clients, base, key, "send", chat_id, "How do glaciers make fjords?")
    assert shown["text"] == fake.chat.reply and shown["updates"] >= 3
    assert shown["metadata"]["conversationId"] == chat_id and shown["metadata"]["status"] == "complete"
    assert shown["sources"] == ["Glaciers"]
    assert stored(base, key, workspace, chat_id) == [
        {"role": "USER", "status": "COMPLETE", "content": "How do glaciers make fjords?"},
        {"role": "ASSISTANT", "status": "COMPLETE", "content": fake.chat.reply}]
    again = node(node_clients, base, key, "send", chat_id, "And then?")  # the same chat goes on
    assert again["text"] == fake.chat.reply and len(stored(base, key, workspace, chat_id)) == 4


def test_a_dropped_chat_resumes_from_its_start_and_a_stopped_one_ends(keel, node_clients):
    base, fake = keel
    key, workspace, _ = account(base)
    fake.chat.token_delay = 0.1
    try:
        chat_id = str(uuid.uuid4())
        partial = node(node_clients, base, key, "send-then-abort", chat_id, "Fjords?")
        assert partial["text"] and partial["text"] != fake.chat.reply
        resumed = node(node_clients, base, key, "resume", chat_id)
        assert resumed["text"] == fake.chat.reply and resumed["id"] == partial["id"]  # no gap, no repeat

        stopped_chat = str(uuid.uuid4())
        node(node_clients, base, key, "send-then-abort", stopped_chat, "Dunes?")
        stopped = node(node_clients, base, key, "stop", stopped_chat)
        assert stopped["status"] == "cancelled"
        assert node(node_clients, base, key, "resume", stopped_chat) == {"none": True}
        answer = stored(base, key, workspace, stopped_chat)[-1]
        assert answer["status"] == "CANCELLED" and fake.chat.reply.startswith(answer["content"])
    finally:
        fake.chat.token_delay = 0.0


def test_refusals_are_http_errors_before_any_stream(keel):
    base, _ = keel
    key, _, _ = account(base)
    other_key, _, _ = account(base)
    with httpx.Client(base_url=base, timeout=30) as http:
        chat_id = str(uuid.uuid4())
        body = {"id": chat_id, "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]}
        assert http.post("/ai-sdk/chat", json=body).status_code == 401
        assert http.post("/ai-sdk/chat", json={**body, "id": "not-a-uuid"},
                         headers={"x-api-key": key}).status_code == 400
        started = http.post("/ai-sdk/chat", json=body, headers={"x-api-key": key})
        assert started.status_code == 200 and started.headers["x-vercel-ai-ui-message-stream"] == "v1"
        # another workspace's key cannot continue, resume or stop this chat
        assert http.post("/ai-sdk/chat", json=body, headers={"x-api-key": other_key}).status_code == 404
        assert http.get(f"/ai-sdk/chat/{chat_id}/stream", headers={"x-api-key": other_key}).status_code == 404
        assert http.post(f"/ai-sdk/chat/{chat_id}/stop", headers={"x-api-key": other_key}).status_code == 404

