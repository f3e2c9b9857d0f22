"""Authentication adapters: argon2 passwords, EdDSA JWTs, OAuth providers (authlib)."""
