"""Ports of the billing domain (records and Protocols); filled in by the billing issue."""
