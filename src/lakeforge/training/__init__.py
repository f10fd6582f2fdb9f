"""Curated ML training sets (issue 6, in progress): stable hash splits (``splits``) and
point-in-time feature joins (``pit``) so far; spec, publish, manifest and reproduce are
still to come."""
