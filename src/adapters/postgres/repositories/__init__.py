"""Repositories: map rows to port records; they never commit (the unit of work does)."""
