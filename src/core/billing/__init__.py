"""The billing domain: use cases and rules (pure; ports and stdlib only)."""
