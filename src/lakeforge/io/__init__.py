"""Reading raw sources and writing Delta tables (the only module that commits)."""
