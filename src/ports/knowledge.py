"""Ports of the knowledge domain (records and Protocols); filled in by the knowledge issue."""
