"""Imports every actor module so that one import declares them all on the current broker."""

from src.workers import billing, conversation, knowledge, system  # noqa: F401
