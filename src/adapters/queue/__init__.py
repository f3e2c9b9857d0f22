"""Dramatiq: the broker (Postgres by default, Redis or RabbitMQ by URL) and the JobQueue adapter."""
