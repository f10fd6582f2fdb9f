"""Expectation suites: declared in YAML or Great Expectations 1.x suite JSON, evaluated in
one pass per step, with an action per expectation (warn / drop / quarantine / fail)."""
