"""Curated ML training sets (issue 6, in progress): stable hash splits so far."""
