"""All tables; importing this module registers every domain's tables on `Base.metadata` (Alembic reads it)."""

from src.adapters.postgres.base import Base
from src.adapters.postgres.billing import tables as billing  # noqa: F401
from src.adapters.postgres.conversation import tables as conversation  # noqa: F401
from src.adapters.postgres.identity import tables as identity  # noqa: F401
from src.adapters.postgres.knowledge import graph_tables  # noqa: F401
from src.adapters.postgres.system import tables as system  # noqa: F401

__all__ = ["Base"]
