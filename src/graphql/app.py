"""The Strawberry ASGI app: HTTP, GraphiQL, and subscriptions over graphql-transport-ws."""

from __future__ import annotations

from typing import Any

from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from src.graphql.context import Context
from src.graphql.schema import build_schema


class KeelGraphQL(GraphQL):
    def __init__(self, services: Any, *, graphiql: bool) -> None:
        super().__init__(
            build_schema(),
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            # Uploads: safe from CSRF here because Keel authenticates by header (bearer token or API key),
            # never by cookie, so a cross-site form post carries no credentials.
            multipart_uploads_enabled=True,
        )
        self.services = services

    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(services=self.services, request=request, response=response)
