"""The knowledge domain: use cases and rules (pure; ports and stdlib only)."""
