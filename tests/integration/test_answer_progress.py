"""Answers beyond one process: checkpoints that readers on another process follow, and an API process killed
mid-answer (SIGKILL: nothing of its own shutdown runs) whose answer a real worker fails and settles."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from sqlalchemy import text

from src.core.conversation.chat import Started
from src.core.conversation.live import Delta
from src.core.conversation.progress import RECOVER_JOB, STALLED
from src.main import every
from src.ports.conversation import Conversation, Message, MessageRole, MessageStatus
from src.ports.metering import Reservation
from src.ports.shared import Job
from tests.conftest import keel_serve, signed_up, start_worker, stop_worker
from tests.conversation_helpers import account, ask, member

pytestmark = pytest.mark.slow
CHAT = "subscription($w: ID!, $q: String!) { chat(workspaceId: $w, content: $q) { kind messageId text } }"


async def test_a_reader_on_another_process_follows_the_answer_from_its_checkpoints(configure, fakes):
    openai_fake, _ = fakes
    openai_fake.chat.reply = " ".join(f"w{i}" for i in range(40))
    openai_fake.chat.token_delay = 0.05  # two seconds of answer
    options = {"chat_retrieval_k": 0, "chat_models": "gpt-4o-mini", "chat_checkpoint_seconds": 0.2}
    generating, elsewhere = configure(**options), configure(**options)  # two API processes' containers
    checkpoints = asyncio.create_task(every(0.2, generating.save_answer_progress))
    user_id, workspace_id = await account(generating)
    started, seen = asyncio.get_running_loop().create_future(), []

    async def ask() -> Message:
        async for event in generating.send_message().execute(member(user_id), workspace_id, None, "Count"):
            if isinstance(event, Started):
                started.set_result(event.message.id)
            elif not isinstance(event, Delta):
                return event

    asking = asyncio.create_task(ask())
    message_id = await started
    assert elsewhere.live_answers().get(message_id) is None  # it is not generated there
    async for event in elsewhere.follow_message().execute(member(user_id), workspace_id, message_id, 0):
        seen.append(event)
    checkpoints.cancel()
    answered = await asyncio.wait_for(asking, 30)
    deltas, final = [e for e in seen if isinstance(e, Delta)], seen[-1]
    assert final.status.value == "complete" and final.content == answered.content == openai_fake.chat.reply
    assert "".join(d.text for d in deltas) == final.content
    assert [d.offset for d in deltas] == [sum(len(d.text) for d in deltas[:i]) for i in range(len(deltas))]
    assert len(deltas) >= 3  # it arrived checkpoint by checkpoint while generating, not at the end in one piece


async def test_an_answer_is_stopped_from_another_process_at_the_next_checkpoint(configure, fakes):
    openai_fake, _ = fakes
    openai_fake.chat.reply = " ".join(f"w{i}" for i in range(200))
    openai_fake.chat.token_delay = 0.05  # ten seconds of answer
    options = {"chat_retrieval_k": 0, "chat_models": "gpt-4o-mini", "chat_checkpoint_seconds": 0.2}
    generating, elsewhere = configure(**options), configure(**options)
    checkpoints = asyncio.create_task(every(0.2, generating.save_answer_progress))
    user_id, workspace_id = await account(generating)
    started = asyncio.get_running_loop().create_future()

    async def ask() -> Message:
        async for event in generating.send_message().execute(member(user_id), workspace_id, None, "Count"):
            if isinstance(event, Started):
                started.set_result(event.message.id)
            elif not isinstance(event, Delta):
                return event

    asking = asyncio.create_task(ask())
    message_id = await started
    await asyncio.sleep(0.5)
    asked = await elsewhere.stop_answer().execute(member(user_id), workspace_id, message_id)
    assert asked.status.value == "streaming"  # asked of the generating process, which stops it shortly
    answered = await asyncio.wait_for(asking, 5)
    checkpoints.cancel()
    assert answered.status.value == "cancelled" and answered.error == "stopped"
    assert 0 < answered.completion_tokens < 200 and openai_fake.chat.finished == 0


async def test_an_answer_whose_process_was_killed_is_failed_and_settled_by_a_worker(configure, fakes, settings,
                                                                                     test_env):
    openai_fake, _ = fakes
    openai_fake.chat.reply = " ".join(f"w{i}" for i in range(200))
    openai_fake.chat.token_delay = 0.05  # ten seconds of answer: it is killed long before its end
    env = {**test_env, "KEEL_OPENAI_API_KEY": openai_fake.api_key, "KEEL_OPENAI_BASE_URL": openai_fake.url,
           "KEEL_CHAT_RETRIEVAL_K": "0", "KEEL_CHAT_MODELS": "gpt-4o-mini", "KEEL_CHAT_CHECKPOINT_SECONDS": "0.2",
           "KEEL_CHAT_STALLED_AFTER_SECONDS": "1"}
    with keel_serve(env) as (base, api):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            account_ = await signed_up(http)
        workspace = account_["user"]["workspaces"][0]["id"]
        async with websockets.connect(base.replace("http", "ws") + "/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {account_['accessToken']}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": CHAT, "variables": {"w": workspace, "q": "Count to two hundred"}}}))
            received = ""
            while len(received.split()) < 20:
                event = json.loads(await ws.recv())["payload"]["data"]["chat"]
                message_id = uuid.UUID(event["messageId"])
                received += event["text"]
            await asyncio.sleep(0.5)  # a checkpoint or two more
            os.kill(api.pid, signal.SIGKILL)
            api.wait(timeout=30)

    container = configure(chat_checkpoint_seconds=0.2, chat_stalled_after_seconds=1)
    killed = await _message(container, message_id)
    assert killed.status.value == "streaming" and killed.model == "gpt-4o-mini"
    assert len(killed.content.split()) >= 20 and openai_fake.chat.reply.startswith(killed.content)
    assert await _ledger(container, message_id) == (None, 0, 0)  # still only reserved

    worker = start_worker({**env, "KEEL_CHAT_STALLED_AFTER_SECONDS": "1"})
    try:
        await asyncio.sleep(1)  # stalled by now
        await container.jobs().enqueue(Job(RECOVER_JOB))
        async with asyncio.timeout(60):
            while (await _message(container, message_id)).status.value != "failed":
                await asyncio.sleep(0.3)
        await container.jobs().enqueue(Job(RECOVER_JOB))  # again: nothing changes twice
        await asyncio.sleep(2)
    finally:
        stop_worker(worker)
    failed = await _message(container, message_id)
    assert failed.error == STALLED and failed.content == killed.content and failed.completed_at is not None
    completion = container.token_counter().count("gpt-4o-mini", killed.content)
    settled_at, prompt, completed = await _ledger(container, message_id)
    reserved = await _reserved(container, message_id)
    assert settled_at is not None and completed == failed.completion_tokens == completion
    assert prompt == failed.prompt_tokens == reserved - container.chat().max_output_tokens > 0
    async with container.engine().connect() as connection:
        workspace_id = uuid.UUID(workspace)
        spent = (await connection.execute(text("SELECT sum(prompt_tokens + completion_tokens) FROM usage_records "
                                               "WHERE workspace_id = :w"), {"w": workspace_id})).scalar_one()
        total = (await connection.execute(text("SELECT tokens FROM usage_days WHERE workspace_id = :w AND "
                                               "subject_id = :w"), {"w": workspace_id})).scalar_one()
    assert total == spent == prompt + completed  # the reservation was replaced by the settled usage, once


async def test_a_reader_of_a_stalled_answer_fails_it_without_waiting_for_the_workers(configure):
    container = configure(chat_checkpoint_seconds=0.2, chat_stalled_after_seconds=1)
    user_id, workspace_id = await account(container)
    started = datetime.now(UTC) - timedelta(minutes=5)  # the process answering it stopped long ago
    conversation = Conversation(uuid.uuid4(), workspace_id, user_id, "dead", started, started)
    asked = Message(uuid.uuid4(), conversation.id, MessageRole.USER, "Count", MessageStatus.COMPLETE, started)
    answer = Message(uuid.uuid4(), conversation.id, MessageRole.ASSISTANT, "one two", MessageStatus.STREAMING,
                     started, model="offline", progress_at=started + timedelta(seconds=3))
    async with container.conversation_uow() as uow:
        await uow.conversations.add_turn(conversation, asked, answer, new=True)
        await uow.usage.reserve(Reservation(uuid.uuid4(), workspace_id, user_id, answer.id, "", started.date(),
                                            1_500, started))
        await uow.commit()
    events = [event async for event in container.follow_message().execute(member(user_id), workspace_id, answer.id, 4)]
    assert [(e.offset, e.text) for e in events[:-1]] == [(4, "two")]
    final = events[-1]
    assert (final.status.value, final.content, final.error) == ("failed", "one two", STALLED)
    assert await _ledger(container, answer.id) == (final.completed_at, 1_500 - container.chat().max_output_tokens,
                                                   container.token_counter().count("offline", "one two"))


async def _message(container, message_id) -> Message:
    async with container.conversation_uow() as uow:
        return await uow.messages.get(message_id)


async def _ledger(container, message_id) -> tuple:
    async with container.engine().connect() as connection:
        return tuple((await connection.execute(text(
            "SELECT settled_at, prompt_tokens, completion_tokens FROM usage_records WHERE message_id = :m"),
            {"m": message_id})).one())


async def _reserved(container, message_id) -> int:
    async with container.engine().connect() as connection:
        return (await connection.execute(text("SELECT reserved_tokens FROM usage_records WHERE message_id = :m"),
                                         {"m": message_id})).scalar_one()


async def test_an_answer_failed_by_the_sweep_stays_failed_when_its_slow_process_finishes_it(configure, fakes):
    openai_fake, _ = fakes
    openai_fake.chat.reply = " ".join(f"w{i}" for i in range(30))
    openai_fake.chat.token_delay = 0.1  # three seconds; no checkpoints run here, so after one it looks dead
    options = {"chat_retrieval_k": 0, "chat_models": "gpt-4o-mini", "chat_checkpoint_seconds": 0.2,
               "chat_stalled_after_seconds": 1}
    frozen, sweeper = configure(**options), configure(**options)
    user_id, workspace_id = await account(frozen)
    answering = asyncio.create_task(ask(frozen, user_id, workspace_id, "Count"))
    await asyncio.sleep(1.5)
    assert await sweeper.recover_stalled_answers().execute() >= 1
    final, deltas = await asyncio.wait_for(answering, 30)
    assert "".join(deltas) == openai_fake.chat.reply  # its reader got every token
    assert (final.status.value, final.error) == ("failed", STALLED)  # but the outcome stored first stands
    stored = await _message(frozen, final.id)
    assert (stored.status.value, stored.error, stored.completion_tokens) == ("failed", STALLED,
                                                                            final.completion_tokens)
    settled_at, prompt, completed = await _ledger(frozen, final.id)
    assert settled_at is not None and (prompt, completed) == (stored.prompt_tokens, stored.completion_tokens)
