"""alerce.streams."""
