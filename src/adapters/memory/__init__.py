"""In-process adapters: state that belongs to one process."""
