"""Composition root: the one place that picks adapters and wires them into the core's use cases. Each
domain's wiring lives in src/wiring/<domain>.py; the container is all of them together."""

from __future__ import annotations

from src.config import Settings
from src.core.services import Services
from src.wiring.billing import BillingWiring
from src.wiring.conversation import ConversationWiring
from src.wiring.edge import EdgeWiring
from src.wiring.identity import IdentityWiring
from src.wiring.system import SystemWiring


class Container(SystemWiring, IdentityWiring, EdgeWiring, ConversationWiring, BillingWiring):
    """Foundation (settings, database, units of work, jobs, access policy, entitlements) < identity, edge,
    model calls < knowledge < conversation, billing, system."""


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)


async def shutdown(container: Container) -> None:
    """Release pooled connections; called when the app or a worker stops."""
    await container.chat_models().aclose()
    container.hasher().close()
    await container.engine().dispose()


def services_of(container: Container) -> Services:
    """The container as the driving adapters see it; mypy checks here that it provides every service."""
    return container
