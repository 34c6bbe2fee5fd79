"""alerce.store."""
