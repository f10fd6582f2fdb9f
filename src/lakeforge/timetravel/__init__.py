"""Time travel over lakeforge's Delta tables: ``table@version`` references, diffs, restores.

:mod:`lakeforge.config.table_refs` is pure Python (config code and ``lakeforge sql`` use it
without a JVM); :mod:`~lakeforge.timetravel.diff` and :mod:`~lakeforge.timetravel.restore`
need a SparkSession and import pyspark only inside their functions.
"""

from lakeforge.config.table_refs import VersionedRef, parse_table_ref, rewrite_sql

__all__ = ["VersionedRef", "parse_table_ref", "rewrite_sql"]
