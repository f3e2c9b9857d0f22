"""Ports: the Protocols the core needs and the plain records that cross them."""
