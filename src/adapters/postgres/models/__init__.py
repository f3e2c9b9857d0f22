"""All tables; importing this package registers every model on `Base.metadata` (Alembic reads it)."""

from src.adapters.postgres.models import billing, conversation, graph, identity, knowledge, system  # noqa: F401
from src.adapters.postgres.models.base import Base

__all__ = ["Base"]
