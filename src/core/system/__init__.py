"""System: operational use cases (health, worker probes) that belong to no business domain."""
