"""The lakeforge version, in a module of its own so that low rooms can read it without
importing the package ``lakeforge`` (whose ``__init__`` imports the API on top of them)."""

__version__ = "0.1.0"
