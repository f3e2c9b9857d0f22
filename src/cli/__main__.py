"""`python -m src.cli` is the same as `keel`."""

from src.cli.app import main

main()
