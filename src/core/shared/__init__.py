"""Mechanisms every domain may use (no domain rules here)."""
