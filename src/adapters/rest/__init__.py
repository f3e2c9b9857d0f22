"""REST driving adapter: plain Starlette routes (health, metrics; the Stripe webhook later)."""
