"""Local PostgreSQL (+pgvector, +AGE) for development and tests: install, start, stop, status."""
