"""What the REST driving adapters share: a JSON object body, ids, and a stream with its first event taken
(taken before the response starts, so a refusal is still an HTTP error)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from uuid import UUID

from starlette.requests import Request

from src.ports.shared import InvalidInput

Event = TypeVar("Event")


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object")
    return body


def parse_uuid(raw: Any, field: str, hint: str = "") -> UUID:
    try:
        return UUID(str(raw))
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID{hint}", field=field) from None


async def prepend(first: Event, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
    yield first
    async for event in events:
        yield event
