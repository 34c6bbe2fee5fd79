"""alerce.classifiers."""
