"""ShapeErrors on a small schema: a bug's message never reaches the client, in a query's result or in an event
of a subscription's stream; a domain error keeps its code."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from src.graphql.masking import UNEXPECTED, KeelSchema, ShapeErrors
from src.ports.shared import NotFound


@strawberry.type
class Query:
    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("password=hunter2 in a connection string")

    @strawberry.field
    def missing(self) -> str:
        raise NotFound("no such document")


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        yield 1
        raise RuntimeError("secret detail from deep inside")


SCHEMA = KeelSchema(query=Query, subscription=Subscription, extensions=[ShapeErrors])


async def test_a_query_shows_a_bug_masked_and_a_domain_error_with_its_code():
    result = await SCHEMA.execute("{ broken }")
    assert result.errors[0].message == UNEXPECTED and "hunter2" not in str(result.errors[0].formatted)
    assert result.errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"
    result = await SCHEMA.execute("{ missing }")
    assert (result.errors[0].message, result.errors[0].extensions["code"]) == ("no such document", "NOT_FOUND")


async def test_an_error_in_a_subscription_stream_is_masked_too():
    stream = await SCHEMA.subscribe("subscription { ticks }")
    results = [result async for result in stream]
    assert results[0].data == {"ticks": 1} and not results[0].errors
    failed = results[-1]
    assert failed.errors and failed.errors[0].message == UNEXPECTED
    assert "secret detail" not in str(failed.errors[0].formatted)
