"""The ``lakeforge`` command line."""
