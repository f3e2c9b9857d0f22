"""What a client sees of an error, and what the log keeps of it.

- GraphQL's own errors (syntax, validation, a variable of the wrong type) and Keel's refusals (access,
  limits) reach the client as they are, with an `extensions.code`; each is logged as one WARNING line.
- A domain error that escaped a resolver becomes a typed GraphQL error (its code), not a mask.
- Anything else is a bug: the client sees "Unexpected error." with an `errorId`, the log the traceback.
"""

from __future__ import annotations

import logging
import uuid

import strawberry
from strawberry.extensions import MaskErrors

from graphql import GraphQLError, GraphQLSyntaxError
from src.ports.edge import RateLimited
from src.ports.identity import Forbidden, Unauthenticated
from src.ports.shared import DomainError, InvalidInput, NotFound, StorageUnavailable

log = logging.getLogger("keel.graphql")
UNEXPECTED = "Unexpected error."
CODES: list[tuple[type[DomainError], str]] = [
    (Unauthenticated, "UNAUTHENTICATED"), (Forbidden, "FORBIDDEN"), (InvalidInput, "BAD_USER_INPUT"),
    (NotFound, "NOT_FOUND"), (StorageUnavailable, "UNAVAILABLE"), (RateLimited, "RATE_LIMITED"),
]


def _code(exc: DomainError) -> str:
    return next((code for kind, code in CODES if isinstance(exc, kind)), exc.code.upper())


def domain_extensions(exc: DomainError) -> dict:
    extensions: dict = {"code": _code(exc)}
    if retry := getattr(exc, "retry_after_seconds", None):
        extensions["retryAfterSeconds"] = retry
    return extensions


def domain_error(exc: DomainError) -> GraphQLError:
    """For refusals raised outside a resolver (extensions), where errors are not shaped afterwards."""
    return GraphQLError(str(exc), extensions=domain_extensions(exc))


def _with(error: GraphQLError, message: str, extensions: dict) -> GraphQLError:
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, extensions=extensions)


def shape(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error
        code = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"
        return _with(error, error.message, {**(error.extensions or {}), "code": code})
    if isinstance(original, GraphQLError):  # a refusal (its code), or a variable that could not be coerced
        extensions = dict(original.extensions or {})
        extensions.setdefault("code", "BAD_USER_INPUT")
        return _with(error, error.message, extensions)
    if isinstance(original, DomainError):
        return _with(error, str(original), domain_extensions(original))
    error_id = uuid.uuid4().hex[:12]
    log.error("unexpected error %s in %s", error_id, ".".join(map(str, error.path or [])) or "the operation",
              exc_info=original)
    return _with(error, UNEXPECTED, {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id})


def _expected(error: GraphQLError) -> bool:
    return error.original_error is None or isinstance(error.original_error, GraphQLError | DomainError)


class ShapeErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda error: True)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return shape(error)

    def _process_result(self, result: object) -> None:
        """MaskErrors' own check is an isinstance against a typing Protocol, which costs more than the rest of
        a streamed token's delivery; results carry `errors` or not."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


class KeelSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        """Expected refusals: one line each. Unexpected errors are logged with their traceback (and id) when
        they are shaped for the client."""
        operation = getattr(execution_context, "operation_name", None) or "anonymous"
        for error in errors:
            if _expected(error):
                code = (error.extensions or {}).get("code") or getattr(error.original_error, "code", "invalid")
                log.warning("refused %s operation: %s (%s)", operation, error.message[:300], code)
