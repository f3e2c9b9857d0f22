"""Every domain's services in one type: what the GraphQL context, REST routes and workers are handed, so a
reader (or mypy) can follow a resolver to the use case it calls."""

from __future__ import annotations

from typing import Protocol

from src.core.billing.services import BillingServices
from src.core.conversation.services import ConversationServices
from src.core.edge.services import EdgeServices
from src.core.identity.services import IdentityServices
from src.core.knowledge.services import KnowledgeServices
from src.core.system.services import SystemServices


class Services(IdentityServices, EdgeServices, KnowledgeServices, ConversationServices, BillingServices,
               SystemServices, Protocol):
    pass
