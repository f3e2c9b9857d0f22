"""The public edge: who may send how much, and when."""
