"""Port for telling operators what the product does: the use cases report each event here (a model call, a
retry, a budget refusal, a search, an embedded batch, a refused request); an adapter turns them into
metrics. Labels stay bounded: providers, models, templates (`answer@3`, or what a structured call asks for),
modes and scopes; never a user, a workspace or any text."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from src.ports.models import Usage

Attribute = str | int | float | bool


class Span(Protocol):
    """One timed step of a trace (a no-op while tracing is off)."""

    def set(self, key: str, value: Attribute) -> None: ...

    def fail(self, error_type: str) -> None:
        """The step failed (`error_type`: a bounded code, as in metrics)."""

    def end(self) -> None: ...


class Telemetry(Protocol):
    def start_span(self, name: str, attributes: Mapping[str, Attribute] | None = None) -> Span:
        """A span under the current one that the caller ends (a stream's: it outlives the block that starts
        it, so it is never made current)."""
        ...

    def span(self, name: str, attributes: Mapping[str, Attribute] | None = None,
             parent: str | None = None) -> AbstractContextManager[Span]:
        """A span that is the current one for a block: what runs inside nests under it, and the block's
        context (src/ports/context.py) carries its trace id and W3C traceparent. `parent`: a traceparent to
        continue (a job continues the request that made it)."""
        ...

    def model_call(self, provider: str, model: str, template: str, outcome: str, seconds: float,
                   first_token_seconds: float | None) -> None:
        """One call that a model answered or that ended (`outcome`: ok, error, cancelled); the time to its
        first token when it streamed one."""

    def model_error(self, provider: str, model: str, template: str, code: str) -> None:
        """One failed attempt; `code`: the HTTP status, timeout, empty or connection."""

    def model_retry(self, provider: str, model: str, template: str) -> None: ...

    def model_fallback(self, template: str, from_model: str, to_model: str) -> None:
        """The first model of the chain did not answer; `to_model` did."""

    def model_usage(self, provider: str, model: str, template: str, usage: Usage, cost_usd: float) -> None:
        """What was settled on the budget: the same figures as the usage ledger."""

    def circuit(self, model: str, is_open: bool) -> None: ...

    def budget_soft_capped(self) -> None:
        """A request past the plan's soft cap went to its cheaper model."""

    def budget_refused(self, limit: str) -> None:
        """A request refused at a hard cap (`limit`: daily_tokens, user_daily_tokens, api_key_daily_tokens)."""

    def retrieval(self, mode: str, seconds: float, candidates: int, results: int) -> None: ...

    def embedded(self, model: str, chunks: int, seconds: float) -> None:
        """One batch of chunks embedded by `model`."""

    def rate_limited(self, scope: str) -> None:
        """A request refused by a rate limit (`scope`: address, user, api-key, workspace, process)."""

    def answer_rated(self, template: str, rating: str) -> None:
        """An answer's owner rated it (again: a changed rating counts once more)."""
