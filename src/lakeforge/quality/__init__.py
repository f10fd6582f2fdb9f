"""Expectation suites: declared in YAML or Great Expectations 1.x suite JSON, carried by a
step's writes and measured in one aggregation over what it wrote, with an action per
expectation (warn / drop / quarantine / fail)."""

import sys as _sys

# Great Expectations imports pyspark.sql.connect, whose check_dependencies() takes a
# __main__ without __spec__ and __file__ (``python -c``, an embedded interpreter, a
# pytest-xdist worker) for a doctest run and calls sys.exit(0) when pyarrow is missing:
# the process would end mid-run with exit status 0. Give such a __main__ a file name.
_main = _sys.modules.get("__main__")
if (
    _main is not None
    and getattr(_main, "__spec__", None) is None
    and not hasattr(_main, "__file__")
):
    _main.__file__ = "<string>"
