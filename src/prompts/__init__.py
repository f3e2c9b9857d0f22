"""Versioned prompt templates, one TOML file per version: `<name>/v<version>.toml` with `system` and `user`.
Code asks for a template by name (newest version unless pinned); wording changes live here only."""
