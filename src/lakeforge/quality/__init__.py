"""Expectation suites: declared in YAML or Great Expectations 1.x suite JSON, carried by a
step's writes and measured in one aggregation over what it wrote, with an action per
expectation (warn / drop / quarantine / fail)."""
