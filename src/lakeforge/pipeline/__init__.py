"""Running a pipeline: lock, session, the executor that visits the plan's steps, system
tables. Above steps (it runs them) and below the API and the CLI (which call it)."""
