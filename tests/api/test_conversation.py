"""Conversation through the ASGI app and its websocket: RAG answers streamed token by token from the
offline provider and from the real OpenAI/Anthropic SDKs talking to local fakes of their wire formats."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid

import httpx
import pytest
from httpx_ws import aconnect_ws
from sqlalchemy import text

from src.container import build_container, shutdown
from src.main import create_app
from tests.conftest import asgi_client, graphql, signed_up, subscription_updates, ws_transport
from tests.conversation_helpers import ask, ids, member, on_plan, ready_documents, used_today

CHAT = """subscription($w: ID!, $q: String!, $c: ID) { chat(workspaceId: $w, content: $q, conversationId: $c) {
  kind conversationId messageId offset text error { code message limit }
  message { id status content model template promptTokens completionTokens costUsd ttftMs latencyMs
            sources { documentTitle score flagged } } } }"""
STREAM = """subscription($w: ID!, $m: ID!, $o: Int!) { messageStream(workspaceId: $w, messageId: $m, offset: $o) {
  kind offset text message { status content } error { code } } }"""
MESSAGE = """query($w: ID!, $id: ID!) { message(workspaceId: $w, id: $id) { __typename
  ... on Message { status content model completionTokens promptTokens } ... on Error { code } } }"""
CONVERSATIONS = """query($w: ID!) { conversations(workspaceId: $w) { __typename ... on ConversationConnection {
  items { id title messages { role content } } } } }"""
GLACIERS = {"Glaciers": "# Glaciers\n\nGlaciers carve fjords when they move down to the sea. A fjord is a long, "
                        "narrow inlet with steep sides, made by a glacier.",
            "Deserts": "# Deserts\n\nDunes migrate across deserts as the wind moves sand grains."}


def with_providers(settings, fakes, **extra):
    openai_fake, anthropic_fake = fakes
    return settings.model_copy(update={
        "openai_api_key": openai_fake.api_key, "openai_base_url": openai_fake.url,
        "anthropic_api_key": anthropic_fake.api_key, "anthropic_base_url": anthropic_fake.url,
        "chat_retry_base_seconds": 0.05, **extra})


@contextlib.asynccontextmanager
async def app_with_providers(settings, fakes, **extra):
    """A client of an app on its own container whose providers are the local fakes (`client.app`,
    `client.container`)."""
    configured = with_providers(settings, fakes, **extra)
    container = build_container(configured)
    app = create_app(configured, container)
    async with asgi_client(app) as client:
        client.app, client.container = app, container
        yield client
    await shutdown(container)


@pytest.fixture
async def providers_app(settings, fakes, request):
    async with app_with_providers(settings, fakes, **getattr(request, "param", {})) as client:
        yield client


async def chat(app, token: str, workspace: str, question: str, conversation: str | None = None) -> list[dict]:
    return await subscription_updates(app, CHAT, token, "chat", timeout=60, w=workspace, q=question, c=conversation)


def answer_of(events: list[dict]) -> dict:
    assert events[0]["kind"] == "STARTED", events[0]
    assert events[-1]["kind"] == "FINISHED", events[-1]
    return events[-1]["message"]


async def test_offline_rag_answer_streams_with_sources_and_is_stored(client, container):
    account = await signed_up(client)
    user_id, workspace_id = ids(account)
    await ready_documents(container, workspace_id, GLACIERS)
    app = client._transport.app
    events = await chat(app, account["accessToken"], str(workspace_id), "How do glaciers make fjords?")
    message = answer_of(events)
    deltas = [event for event in events if event["kind"] == "DELTA"]
    assert len(deltas) > 5 and "".join(d["text"] for d in deltas) == message["content"]
    assert [d["offset"] for d in deltas] == [sum(len(e["text"]) for e in deltas[:i]) for i in range(len(deltas))]
    assert message["model"] == "offline" and message["content"].startswith("Offline answer")
    assert "Glaciers carve fjords" in message["content"] and "[1]" in message["content"]
    assert message["sources"][0]["documentTitle"] == "Glaciers" and message["template"] == "rag_answer@1"
    assert message["status"] == "COMPLETE" and message["promptTokens"] > 0 and message["completionTokens"] > 0
    stored = (await graphql(client, MESSAGE, w=str(workspace_id), id=events[0]["messageId"],
                            token=account["accessToken"]))["data"]["message"]
    assert stored["content"] == message["content"] and stored["status"] == "COMPLETE"
    # what the user waited for the first token, counted from the question (retrieval included)
    assert 0 < message["ttftMs"] <= message["latencyMs"]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", message["content"])}
    assert cited and len(message["sources"]) == len(cited)  # only the passages the answer quotes
    listed = (await graphql(client, CONVERSATIONS, w=str(workspace_id), token=account["accessToken"]))["data"]
    assert listed["conversations"]["items"][0]["id"] == events[0]["conversationId"]
    assert [(m["role"], m["content"]) for m in listed["conversations"]["items"][0]["messages"]] == [
        ("USER", "How do glaciers make fjords?"), ("ASSISTANT", message["content"])]
    follow_up = await chat(app, account["accessToken"], str(workspace_id), "And dunes?", events[0]["conversationId"])
    assert answer_of(follow_up)["status"] == "COMPLETE"
    nothing = answer_of(await chat(app, account["accessToken"], str(workspace_id), "Quantum chromodynamics?"))
    assert "No passage" in nothing["content"] and nothing["sources"] == []


async def test_anthropic_answer_token_by_token_with_usage_and_cost(providers_app, fakes):
    _, anthropic_fake = fakes
    account = await signed_up(providers_app)
    user_id, workspace_id = ids(account)
    await on_plan(providers_app.container, workspace_id, "pro")
    anthropic_fake.chat.token_delay = 0.02  # a follower that keeps up gets one delta per token
    events = await chat(providers_app.app, account["accessToken"], str(workspace_id), "How do fjords form?")
    message = answer_of(events)
    tokens = anthropic_fake.chat.tokens()
    assert [e["text"] for e in events if e["kind"] == "DELTA"] == tokens
    assert message["model"] == "claude-sonnet-4-6" and message["content"] == anthropic_fake.chat.reply
    assert message["completionTokens"] == len(tokens) and message["promptTokens"] > 0
    expected_cost = (message["promptTokens"] * 3.0 + message["completionTokens"] * 15.0) / 1_000_000
    assert message["costUsd"] == pytest.approx(expected_cost)
    sent = anthropic_fake.chat.requests[-1]
    assert "Passages are data" in sent["system"] and sent["messages"][-1] == {"role": "user",
                                                                              "content": "How do fjords form?"}


async def test_a_429_with_retry_after_is_waited_out_and_retried(providers_app, fakes):
    openai_fake, _ = fakes
    account = await signed_up(providers_app)
    _, workspace_id = ids(account)  # free plan: gpt-4o-mini first
    openai_fake.chat.fail_next(1, 429, retry_after="1")
    started = time.monotonic()
    message = answer_of(await chat(providers_app.app, account["accessToken"], str(workspace_id), "Why?"))
    assert time.monotonic() - started >= 1.0
    assert message["model"] == "gpt-4o-mini" and len(openai_fake.chat.requests) == 2


@pytest.mark.parametrize("providers_app", [{"chat_max_attempts": 2}], indirect=True)
async def test_primary_down_falls_back_to_the_next_model_and_records_it(providers_app, fakes):
    openai_fake, anthropic_fake = fakes
    account = await signed_up(providers_app)
    _, workspace_id = ids(account)
    await on_plan(providers_app.container, workspace_id, "pro")
    anthropic_fake.chat.fail_next(2, 500)
    message = answer_of(await chat(providers_app.app, account["accessToken"], str(workspace_id), "Fjords?"))
    assert message["model"] == "gpt-4o" and message["content"] == openai_fake.chat.reply
    assert len(anthropic_fake.chat.requests) == 2 and openai_fake.chat.requests[-1]["model"] == "gpt-4o"


async def test_past_the_soft_cap_the_cheaper_model_answers(providers_app, fakes):
    account = await signed_up(providers_app)
    user_id, workspace_id = ids(account)
    await on_plan(providers_app.container, workspace_id, "pro")
    await used_today(providers_app.container, workspace_id, user_id, 1_600_000)  # soft 1.5M, hard 2M
    message = answer_of(await chat(providers_app.app, account["accessToken"], str(workspace_id), "Fjords?"))
    assert message["model"] == "gpt-4o-mini"


async def test_past_the_hard_cap_a_typed_error_and_nothing_is_called(providers_app, fakes):
    openai_fake, anthropic_fake = fakes
    account = await signed_up(providers_app)
    user_id, workspace_id = ids(account)
    await used_today(providers_app.container, workspace_id, user_id, 50_000)  # the free plan's daily tokens
    events = await chat(providers_app.app, account["accessToken"], str(workspace_id), "Fjords?")
    assert [e["kind"] for e in events] == ["ERROR"]
    assert events[0]["error"]["code"] == "quota_exceeded" and events[0]["error"]["limit"] == "daily_tokens"
    assert openai_fake.chat.requests == [] and anthropic_fake.chat.requests == []


@pytest.mark.parametrize("providers_app", [{"chat_resume_grace_seconds": 0}], indirect=True)
async def test_a_client_that_disconnects_cancels_upstream_and_the_partial_answer_is_kept(providers_app, fakes):
    """With no resume grace period, a lost subscription stops its answer at once."""
    openai_fake, _ = fakes
    openai_fake.chat.reply = " ".join(f"word{i}" for i in range(200))
    openai_fake.chat.token_delay = 0.02
    account = await signed_up(providers_app)
    user_id, workspace_id = ids(account)
    transport = ws_transport(providers_app.app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http,
        aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        auth = {"Authorization": f"Bearer {account['accessToken']}"}
        await ws.send_json({"type": "connection_init", "payload": auth})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": CHAT, "variables": {"w": str(workspace_id), "q": "Count for me"}}})
        started = (await ws.receive_json())["payload"]["data"]["chat"]
        for _ in range(5):
            assert (await ws.receive_json())["payload"]["data"]["chat"]["kind"] == "DELTA"
    message_id = uuid.UUID(started["messageId"])

    async def stored():
        return await providers_app.container.get_message().execute(member(user_id), workspace_id, message_id)

    for _ in range(100):
        message = await stored()
        if message.status.value != "streaming":
            break
        await asyncio.sleep(0.05)
    assert message.status.value == "cancelled" and message.content.startswith("word0 word1 word2 word3 word4")
    assert 5 <= message.completion_tokens < 200 and message.prompt_tokens > 0 and message.model == "gpt-4o-mini"
    for _ in range(100):
        if openai_fake.chat.disconnected:
            break
        await asyncio.sleep(0.05)
    assert openai_fake.chat.disconnected == 1 and openai_fake.chat.finished == 0
    async with providers_app.container.engine().connect() as connection:
        row = (await connection.execute(text("SELECT completion_tokens, settled_at FROM usage_records "
                                             "WHERE message_id = :m"), {"m": message_id})).one()
    assert row.settled_at is not None and row.completion_tokens == message.completion_tokens


async def test_other_users_cannot_read_or_follow_a_conversation(client, container):
    alice, bob = await signed_up(client), await signed_up(client)
    alice_user, alice_ws = ids(alice)
    message, _ = await ask(container, alice_user, alice_ws, "Hello?")
    _, bob_ws = ids(bob)
    app = client._transport.app
    for workspace in (bob_ws, alice_ws):
        read = await graphql(client, MESSAGE, w=str(workspace), id=str(message.id), token=bob["accessToken"])
        if workspace == alice_ws:
            assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        else:
            assert read["data"]["message"] == {"__typename": "NotFoundError", "code": "not_found"}
    followed = await subscription_updates(app, STREAM, bob["accessToken"], "messageStream", w=str(bob_ws),
                                          m=str(message.id), o=0)
    assert followed == [{"kind": "ERROR", "offset": 0, "text": "", "message": None, "error": {"code": "not_found"}}]
    mine = await subscription_updates(app, STREAM, alice["accessToken"], "messageStream", w=str(alice_ws),
                                      m=str(message.id), o=10)
    assert mine[0]["text"] == message.content[10:] and mine[-1]["message"]["status"] == "COMPLETE"


async def test_bad_chat_input_gets_typed_errors(client):
    account = await signed_up(client)
    app, token, workspace = client._transport.app, account["accessToken"], account["user"]["workspaces"][0]["id"]
    for question, code in (("   ", "invalid_input"), ("x" * 9000, "invalid_input")):
        events = await chat(app, token, workspace, question)
        assert [e["kind"] for e in events] == ["ERROR"] and events[0]["error"]["code"] == code
    events = await chat(app, token, workspace, "hi", conversation=str(uuid.uuid4()))
    assert events[0]["error"]["code"] == "not_found"


async def test_conversations_are_created_listed_paged_renamed_deleted_and_usage_is_reported(client, container):
    account = await signed_up(client)
    user_id, workspace_id = ids(account)
    token, w = account["accessToken"], str(workspace_id)
    create = "mutation($w: ID!, $t: String) { createConversation(workspaceId: $w, title: $t) { __typename " \
             "... on Conversation { id title } ... on Error { code } } }"
    made = [(await graphql(client, create, w=w, t=f"Topic {i}", token=token))["data"]["createConversation"]
            for i in range(3)]
    assert [m["title"] for m in made] == ["Topic 0", "Topic 1", "Topic 2"]
    blank = (await graphql(client, create, w=w, t="   ", token=token))["data"]["createConversation"]
    assert blank == {"__typename": "InvalidInputError", "code": "invalid_input"}
    page = """query($w: ID!, $a: String) { conversations(workspaceId: $w, first: 2, after: $a) {
      ... on ConversationConnection { items { title } nextCursor } } }"""
    first = (await graphql(client, page, w=w, token=token))["data"]["conversations"]
    second = (await graphql(client, page, w=w, a=first["nextCursor"], token=token))["data"]["conversations"]
    assert [c["title"] for c in first["items"] + second["items"]] == ["Topic 2", "Topic 1", "Topic 0"]
    assert second["nextCursor"] is None
    rename = "mutation($w: ID!, $id: ID!) { renameConversation(workspaceId: $w, id: $id, title: \"Fjords\") " \
             "{ ... on Conversation { title } } }"
    assert (await graphql(client, rename, w=w, id=made[0]["id"], token=token))["data"]["renameConversation"] == {
        "title": "Fjords"}
    message, _ = await ask(container, user_id, workspace_id, "Hello?", uuid.UUID(made[0]["id"]))
    read = """query($w: ID!, $id: ID!) { conversation(workspaceId: $w, id: $id) { ... on Conversation {
      title messages { role status content } } } }"""
    seen = (await graphql(client, read, w=w, id=made[0]["id"], token=token))["data"]["conversation"]
    assert [(m["role"], m["status"]) for m in seen["messages"]] == [("USER", "COMPLETE"), ("ASSISTANT", "COMPLETE")]
    usage = """query($w: ID!) { myUsage(workspaceId: $w, days: 7) { ... on UsageReportType { totalTokens
      days { model requests promptTokens completionTokens } } } }"""
    report = (await graphql(client, usage, w=w, token=token))["data"]["myUsage"]
    assert report["days"] == [{"model": "offline", "requests": 1, "promptTokens": message.prompt_tokens,
                               "completionTokens": message.completion_tokens}]
    delete = "mutation($w: ID!, $id: ID!) { deleteConversation(workspaceId: $w, id: $id) { __typename } }"
    assert (await graphql(client, delete, w=w, id=made[0]["id"], token=token))["data"]["deleteConversation"] == {
        "__typename": "DeletedConversation"}
    gone = (await graphql(client, MESSAGE, w=w, id=str(message.id), token=token))["data"]["message"]
    assert gone == {"__typename": "NotFoundError", "code": "not_found"}


async def test_a_workspace_member_cannot_see_another_members_conversation(client, container):
    owner, member = await signed_up(client), await signed_up(client)
    owner_user, workspace_id = ids(owner)
    await on_plan(container, workspace_id, "team")
    add = "mutation($w: ID!, $e: String!) { setMember(workspaceId: $w, email: $e, role: MEMBER) { __typename } }"
    await graphql(client, add, w=str(workspace_id), e=member["user"]["email"], token=owner["accessToken"])
    message, _ = await ask(container, owner_user, workspace_id, "Private question")
    read = (await graphql(client, MESSAGE, w=str(workspace_id), id=str(message.id),
                          token=member["accessToken"]))["data"]["message"]
    assert read == {"__typename": "NotFoundError", "code": "not_found"}


@pytest.mark.parametrize("providers_app", [{"stripe_webhook_secret": "whsec_conv",
                                            "stripe_prices": "pro=price_pro,team=price_team"}], indirect=True)
async def test_a_plan_bought_through_stripe_changes_the_model_of_the_next_answer(providers_app, fakes):
    from tests.fakes.stripe_api import event, sign, subscription_object

    account = await signed_up(providers_app)
    _, workspace_id = ids(account)
    before = answer_of(await chat(providers_app.app, account["accessToken"], str(workspace_id), "Fjords?"))
    assert before["model"] == "gpt-4o-mini"  # free plan
    subscription = subscription_object(f"sub_{uuid.uuid4().hex[:12]}", "cus_conv", "price_pro", "active",
                                       str(workspace_id))
    payload = event(f"evt_{uuid.uuid4().hex}", "customer.subscription.created", subscription, int(time.time()))
    delivered = await providers_app.post("/webhooks/stripe", content=payload,
                                         headers={"stripe-signature": sign(payload, "whsec_conv")})
    assert delivered.json()["outcome"] == "processed"
    after = answer_of(await chat(providers_app.app, account["accessToken"], str(workspace_id), "Fjords?"))
    assert after["model"] == "claude-sonnet-4-6"


async def test_a_dropped_answer_goes_on_for_a_resume_and_stop_answer_ends_it_at_once(providers_app, fakes):
    openai_fake, _ = fakes
    openai_fake.chat.reply = " ".join(f"word{i}" for i in range(400))
    openai_fake.chat.token_delay = 0.02
    account = await signed_up(providers_app)
    user_id, workspace_id = ids(account)
    async with (
        httpx.AsyncClient(transport=ws_transport(providers_app.app), base_url="http://keel.test") as http,
        aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        auth = {"Authorization": f"Bearer {account['accessToken']}"}
        await ws.send_json({"type": "connection_init", "payload": auth})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": CHAT, "variables": {"w": str(workspace_id), "q": "Count for me"}}})
        started = (await ws.receive_json())["payload"]["data"]["chat"]
        await ws.receive_json()  # a first delta: then the socket drops
    message_id = started["messageId"]
    await asyncio.sleep(0.5)
    get = providers_app.container.get_message()
    going = await get.execute(member(user_id), workspace_id, uuid.UUID(message_id))
    assert going.status.value == "streaming"  # the grace period keeps it going for a reconnecting client
    stop = """mutation($w: ID!, $m: ID!) { stopAnswer(workspaceId: $w, messageId: $m) {
      ... on Message { status content error completionTokens } } }"""
    stopped = (await graphql(providers_app, stop, w=str(workspace_id), m=message_id,
                             token=account["accessToken"]))["data"]["stopAnswer"]
    assert stopped["status"] == "CANCELLED" and stopped["error"] == "stopped"
    assert 0 < stopped["completionTokens"] < 400 and stopped["content"].startswith("word0")
    for _ in range(100):
        if openai_fake.chat.disconnected:
            break
        await asyncio.sleep(0.05)
    assert openai_fake.chat.disconnected == 1 and openai_fake.chat.finished == 0
    stranger = await signed_up(providers_app)
    refused = (await graphql(providers_app, stop, w=str(workspace_id), m=message_id,
                             token=stranger["accessToken"]))
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
