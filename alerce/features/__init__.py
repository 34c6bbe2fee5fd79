"""alerce.features."""
