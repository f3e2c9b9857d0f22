"""Calling language models, for every domain that does: routing along a fallback chain, retries, circuit
breakers, budgets reserved before a call and settled after, accounting, structured output."""
