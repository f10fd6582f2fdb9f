"""Curated ML training sets (issue 6): a spec (``spec``) is pinned to input versions
(``plan``), built with point-in-time feature joins (``pit``) and stable hash splits
(``splits``) (``build``), measured and checksummed (``manifest``, ``checksum``),
published as one Delta commit with a manifest (``publish``, ``registry``), and can be
rebuilt and verified (``reproduce``) or exported to files (``export``)."""
