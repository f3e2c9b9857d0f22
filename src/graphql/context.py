"""The typed context every resolver receives: the composition root's services and the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.types import Info as StrawberryInfo


@dataclass
class Context:
    services: Any  # the dependency-injector container; typed loosely so graphql never imports it
    request: Any = None
    response: Any = None
    websocket: Any = None


Info = StrawberryInfo[Context, None]
