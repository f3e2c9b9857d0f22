"""Embedding adapters: the local all-MiniLM-L6-v2 (default, offline) and OpenAI (when configured)."""
