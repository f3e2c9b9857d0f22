"""GraphQL driving adapter: one Query/Mutation/Subscription per domain, merged in schema.py."""
