"""Ports of the identity domain (records and Protocols); filled in by the identity issue."""
