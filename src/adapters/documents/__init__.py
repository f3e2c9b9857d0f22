"""Readers of binary document formats."""
