"""Answer feedback and analytics through the API: the owner rates an answer (shown on it, counted in the
metrics), other people cannot, and the workspace's owners export ratings per template version and read
the answers' analytics computed in SQL."""

from __future__ import annotations

from tests.api.test_conversation import GLACIERS
from tests.api.test_metrics import samples, value
from tests.conftest import graphql, signed_up
from tests.conversation_helpers import ask, ids, on_plan, ready_documents

RATE = """mutation($w: ID!, $m: ID!, $r: Rating!, $c: String) { rateAnswer(workspaceId: $w, messageId: $m,
  rating: $r, comment: $c) { __typename ... on Message { id feedback { rating comment ratedAt } }
  ... on Error { code } ... on InvalidInputError { field } } }"""
MESSAGE = """query($w: ID!, $id: ID!) { message(workspaceId: $w, id: $id) { ... on Message { feedback { rating
  comment } } } }"""
EXPORT = """query($w: ID!, $t: String) { answerFeedback(workspaceId: $w, template: $t) { __typename
  ... on FeedbackExport { answers { messageId template model rating comment } } ... on Error { code } } }"""
ANALYTICS = """query($w: ID!) { answerAnalytics(workspaceId: $w, days: 7) { __typename ... on AnswerAnalytics {
  days { day model template answers promptTokens completionTokens costUsd }
  latency { model answers ttftP50Ms ttftP95Ms } feedback { template up down upRatio } } } }"""
ADD_MEMBER = "mutation($w: ID!, $e: String!) { setMember(workspaceId: $w, email: $e, role: MEMBER) { __typename } }"


async def test_the_owner_rates_answers_and_owners_export_and_analyse_them(client, container):
    owner, member = await signed_up(client), await signed_up(client)
    owner_user, workspace_id = ids(owner)
    member_user, _ = ids(member)
    w, token = str(workspace_id), owner["accessToken"]
    await on_plan(container, workspace_id, "team")
    await graphql(client, ADD_MEMBER, w=w, e=member["user"]["email"], token=token)
    await ready_documents(container, workspace_id, GLACIERS)
    first, _ = await ask(container, owner_user, workspace_id, "How do glaciers make fjords?")
    second, _ = await ask(container, owner_user, workspace_id, "And dunes?", first.conversation_id)
    theirs, _ = await ask(container, member_user, workspace_id, "Deserts?")

    rated = (await graphql(client, RATE, w=w, m=str(first.id), r="DOWN", c="  missed   the point ",
                           token=token))["data"]["rateAnswer"]
    assert rated["feedback"]["rating"] == "DOWN" and rated["feedback"]["comment"] == "missed the point"
    again = (await graphql(client, RATE, w=w, m=str(first.id), r="UP", token=token))["data"]["rateAnswer"]
    assert again["feedback"] == {**again["feedback"], "rating": "UP", "comment": None}
    await graphql(client, RATE, w=w, m=str(second.id), r="DOWN", token=token)
    shown = (await graphql(client, MESSAGE, w=w, id=str(first.id), token=token))["data"]["message"]
    assert shown["feedback"] == {"rating": "UP", "comment": None}

    # nobody else rates them; only answers can be rated; comments are bounded
    other = (await graphql(client, RATE, w=w, m=str(first.id), r="DOWN", token=member["accessToken"]))["data"]
    assert other["rateAnswer"]["code"] == "not_found"
    stranger = await signed_up(client)
    refused = await graphql(client, RATE, w=w, m=str(first.id), r="DOWN", token=stranger["accessToken"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    question = await _question_of(container, first)
    assert (await graphql(client, RATE, w=w, m=str(question), r="UP", token=token))["data"]["rateAnswer"][
        "field"] == "messageId"
    long = (await graphql(client, RATE, w=w, m=str(first.id), r="UP", c="x" * 2001, token=token))["data"]
    assert long["rateAnswer"]["field"] == "comment"
    await graphql(client, RATE, w=w, m=str(theirs.id), r="UP", token=member["accessToken"])

    exported = (await graphql(client, EXPORT, w=w, t="rag_answer@1", token=token))["data"]["answerFeedback"]
    assert sorted((row["messageId"], row["rating"]) for row in exported["answers"]) == sorted(
        [(str(first.id), "UP"), (str(second.id), "DOWN"), (str(theirs.id), "UP")])
    assert (await graphql(client, EXPORT, w=w, t="rag_answer@9", token=token))["data"]["answerFeedback"][
        "answers"] == []
    denied = await graphql(client, EXPORT, w=w, token=member["accessToken"])
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    analytics = (await graphql(client, ANALYTICS, w=w, token=token))["data"]["answerAnalytics"]
    assert sum(day["answers"] for day in analytics["days"]) == 3
    assert sum(day["completionTokens"] for day in analytics["days"]) == sum(
        m.completion_tokens for m in (first, second, theirs))
    assert {day["model"] for day in analytics["days"]} == {"offline"}
    latency = analytics["latency"][0]
    assert latency["answers"] == 3 and 0 < latency["ttftP50Ms"] <= latency["ttftP95Ms"]
    assert analytics["feedback"] == [{"template": "rag_answer@1", "up": 2, "down": 1, "upRatio": 2 / 3}]

    counted = samples((await client.get("/metrics")).text)
    assert value(counted, "keel_answer_ratings_total", template="rag_answer@1", rating="down") >= 2
    assert value(counted, "keel_answer_ratings_total", template="rag_answer@1", rating="up") >= 2


async def _question_of(container, answer) -> object:
    async with container.conversation_uow() as uow:
        history = await uow.messages.history(answer.conversation_id, 10)
    return next(message.id for message in history if message.role.value == "user")
