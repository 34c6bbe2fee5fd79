"""alerce.correction."""
