"""alerce.simulate."""
