"""Wiring between domains: small adapters the composition root builds to let one domain use another's use
cases through its own ports (the domains never import each other)."""
