"""Postgres adapters: SQLAlchemy async models and repositories, pgvector search, the AGE graph."""
