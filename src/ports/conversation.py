"""Ports of the conversation domain (records and Protocols); filled in by the conversation issue."""
