"""Lineage: the system tables in schema ``lakeforge`` and the queries over them."""
