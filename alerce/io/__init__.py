"""alerce.io."""
