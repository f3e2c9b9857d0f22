"""Ids as GraphQL clients send them: a malformed one is the client's typed error, naming the argument."""

from __future__ import annotations

from uuid import UUID

from src.ports.shared import InvalidInput


def parse_id(raw: str, field: str) -> UUID:
    try:
        return UUID(str(raw))
    except ValueError:
        raise InvalidInput("not a valid id", field=field) from None
