"""Runs Alembic programmatically against Keel's database (or a named one, for tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from src.config import REPO_ROOT, Settings


def alembic_config(settings: Settings, database: str | None = None) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.attributes["url"] = settings.sqlalchemy_url(database)
    return config


def upgrade(settings: Settings, revision: str = "head", database: str | None = None) -> None:
    command.upgrade(alembic_config(settings, database), revision)


def downgrade(settings: Settings, revision: str, database: str | None = None) -> None:
    command.downgrade(alembic_config(settings, database), revision)
