"""Redis adapters (when KEEL_REDIS_URL is set): state shared by every API process."""
