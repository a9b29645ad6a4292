"""Events, item catalogs, importers, preprocessing, splits and synthetic data."""
