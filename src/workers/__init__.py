"""Worker driving adapter: Dramatiq actors that turn jobs into use-case calls."""
