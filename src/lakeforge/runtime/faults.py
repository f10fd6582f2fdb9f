"""Moved to :mod:`lakeforge.faults`; this re-export goes once every import has moved."""

from lakeforge.faults import ENV, fail_during, fail_point

__all__ = ["ENV", "fail_during", "fail_point"]
