"""The context of the work being done — request id, trace id, operation, user and workspace ids (ids only) —
shared by every layer through a context variable: the edge and the GraphQL layer bind it, log lines carry it,
and a job's message carries it to the worker that runs it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

KEYS = ("request_id", "trace_id", "span_id", "traceparent", "operation", "user_id", "api_key_id", "workspace_id",
        "job", "message_id")
_context: ContextVar[Mapping[str, str]] = ContextVar("keel_context", default=MappingProxyType({}))


def current_context() -> dict[str, str]:
    return dict(_context.get())


def bind_context(**values: object) -> None:
    """Adds to the current task's context: every later line of this request or job carries them."""
    _context.set({**_context.get(), **{key: str(value) for key, value in values.items() if value is not None}})


@contextmanager
def context_of(values: Mapping[str, object]) -> Iterator[None]:
    """The given context (known keys only: a message's options come from outside) for a scope, then the one
    before."""
    token = _context.set({key: str(value) for key, value in values.items() if key in KEYS and value})
    try:
        yield
    finally:
        _context.reset(token)
