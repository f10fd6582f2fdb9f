"""One module per step kind: ingest (bronze), conform (silver), transform (gold)."""
