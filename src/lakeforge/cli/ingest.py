"""Operator decisions on raw files: ``lakeforge ingest retry|skip FILE``, ``lakeforge runs repair``.

A run never gets stuck on a file: what it cannot read is rejected (``lakeforge.rejected_files``)
and stays out until an operator decides here. Each decision is one event in the ingestion
log, recorded with a run id of its own.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from lakeforge.cli.context import env_option, session_for
from lakeforge.cli.output import console

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TABLE_OPTION = click.option(
    "--table",
    "-t",
    default=None,
    help="The bronze table whose log to change (needed only when several ingest the file).",
)

# `runs repair` exit status when something is left for an operator to decide.
EXIT_NEEDS_DECISION = 3


def _session(env: str, app: str) -> SparkSession:
    from lakeforge.lineage.system_tables import ensure_system_tables

    spark = session_for(env, app)
    ensure_system_tables(spark)
    return spark


@click.group("ingest")
def ingest_group() -> None:
    """Decide about raw files a run rejected or left pending."""


@ingest_group.command("retry")
@click.argument("file")
@TABLE_OPTION
@env_option
def retry_command(file: str, table: str | None, env: str) -> None:
    """Make a rejected, skipped or vanished FILE eligible again: the next run reads it."""
    from lakeforge.results import new_run_id
    from lakeforge.steps.ingest import retry_file

    d = retry_file(_session(env, "lakeforge:ingest"), file, new_run_id(), table)
    console.print(f"{d.table}: {d.path}: {d.before} -> {d.after}: {d.message}", markup=False)


@ingest_group.command("skip")
@click.argument("file")
@TABLE_OPTION
@env_option
def skip_command(file: str, table: str | None, env: str) -> None:
    """Give up on a pending or rejected FILE: logged skipped, no run reads it again."""
    from lakeforge.results import new_run_id
    from lakeforge.steps.ingest import skip_file

    d = skip_file(_session(env, "lakeforge:ingest"), file, new_run_id(), table)
    console.print(f"{d.table}: {d.path}: {d.before} -> {d.after}: {d.message}", markup=False)


@click.group("runs")
def runs_group() -> None:
    """Look after runs and what they left behind."""


@runs_group.command("repair")
@env_option
def repair_command(env: str) -> None:
    """Resolve what needs no decision (pending batches already in bronze, vanished files);
    list what does (rejected files). Exit status 3 when something is left to decide."""
    from lakeforge.results import new_run_id
    from lakeforge.steps.ingest import repair

    report = repair(_session(env, "lakeforge:repair"), new_run_id())
    for line in report.resolved:
        console.print(f"resolved: {line}", markup=False)
    for line in report.decide:
        console.print(f"decide: {line}", markup=False)
    if not report.resolved and not report.decide:
        console.print("nothing to repair")
    if report.decide:
        sys.exit(EXIT_NEEDS_DECISION)


def register(group: click.Group) -> None:
    group.add_command(ingest_group)
    group.add_command(runs_group)
