"""Rate limits on GraphQL. Every operation, over HTTP or a websocket `subscribe`, spends its root fields'
costs from the caller's quota before anything runs; a field naming a workspace also spends from the
workspace's once the caller is authorised there (see permissions.py). A refusal is a RATE_LIMITED error
with `retryAfterSeconds`; over HTTP a refused operation answers 429 with Retry-After, and every response
carries the RateLimit and RateLimit-Policy fields of the quota nearest its limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension

from graphql import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, InlineFragmentNode, OperationType
from src.core.identity.authorize import memberships_read_once, memberships_read_once_in_this_task
from src.graphql.limits import operation_of
from src.graphql.masking import domain_error
from src.ports.edge import RateLimited
from src.ports.identity import Unauthenticated
from src.ports.shared import DomainError


def root_fields(document, operation_name: str | None) -> list[str]:
    """The root fields an operation asks for, each alias counted again."""
    operation = operation_of(document, operation_name)
    if operation is None:
        return []
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    names, pending = [], list(operation.selection_set.selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            pending.extend(fragments.pop(selection.name.value).selection_set.selections)
    return names


class Admit(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        operations = [name for name in root_fields(execution.graphql_document, execution.operation_name)
                      if not name.startswith("__")] or ["__introspection"]
        try:
            try:
                principal = await context.principal()
            except Unauthenticated:
                principal = None  # spends as anonymous; the field's guard refuses it
            context.note_rate(await context.services.admission().caller(principal, context.client, operations))
        except RateLimited as exc:
            context.note_rate(exc.decision)
            context.set_status(429)
            raise domain_error(exc) from None
        except DomainError as exc:  # the caller could not be checked (the database is busy or away)
            raise domain_error(exc) from None
        # Queries and subscriptions change no membership: their guards and use cases share reads
        operation = operation_of(execution.graphql_document, execution.operation_name)
        kind = operation.operation if operation is not None else OperationType.MUTATION
        over_a_socket = context.request is not None and context.request.scope["type"] == "websocket"
        if kind is OperationType.SUBSCRIPTION and over_a_socket:  # a task per operation; its use case runs later
            memberships_read_once_in_this_task()
        elif kind is OperationType.QUERY:
            with memberships_read_once():
                yield
            return
        yield

    def on_operation(self):
        try:
            yield
        finally:  # refused operations too: they end with an exception from `on_execute`
            self.execution_context.context.write_rate_headers()
