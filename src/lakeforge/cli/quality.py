"""``lakeforge expectations``, ``lakeforge suggest`` and ``lakeforge quality``."""

from __future__ import annotations

from pathlib import Path

import click

from lakeforge.cli.context import env_option, session_for
from lakeforge.cli.output import console, print_rows, rows_table
from lakeforge.errors import Code, SqlError, TimeTravelError


@click.command("expectations")
def expectations_command() -> None:
    """List the Great Expectations types lakeforge evaluates, with level and kwargs."""
    from lakeforge.quality.registry import KINDS

    rows = [
        (
            k.type,
            k.level,
            " | ".join(k.actions),
            ", ".join(k.required) or "-",
            ", ".join(k.optional) or "-",
        )
        for k in sorted(KINDS.values(), key=lambda k: (k.level, k.type))
    ]
    console.print(rows_table(["type", "level", "actions", "required kwargs", "optional"], rows))


@click.command("suggest")
@click.argument("ref")
@env_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Suite file to write (default: quality/<table>.suggested.json).",
)
@click.option(
    "--max-values",
    default=20,
    show_default=True,
    help="Columns with at most this many distinct values get a value-set expectation.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing suite file.")
def suggest_command(ref: str, env: str, out: Path | None, max_values: int, force: bool) -> None:
    """Profile TABLE[@VERSION] and write a starter Great Expectations suite (all warn)."""
    from lakeforge.config.table_refs import parse_table_ref
    from lakeforge.quality.suggest import dumps, profile, suggest_suite
    from lakeforge.steps.versions import resolve_version

    try:
        parsed = parse_table_ref(ref)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None
    target = out or Path("quality") / f"{parsed.name}.suggested.json"
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; pass --force to overwrite it")
    spark = session_for(env, "lakeforge:suggest")
    if not spark.catalog.tableExists(parsed.name):
        raise SqlError(Code.TABLE_NOT_FOUND, f"table {parsed.name} does not exist")
    version = resolve_version(spark, ref)
    df = spark.sql(f"SELECT * FROM {parsed.name} VERSION AS OF {version}")
    profiles = profile(df, max_values)
    suite = suggest_suite(parsed.name, version, profiles)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(suite))
    console.print(
        f"wrote {len(suite['expectations'])} expectations for {parsed.name}@v{version} "
        f"({profiles[0].rows if profiles else 0} rows) to {target}"
    )
    console.print(f"use it from the pipeline: expectations: [{{suite: {target}}}]")


@click.command("quality")
@env_option
@click.option("--run", "run_id", default=None, help="A run id (default: the newest run).")
@click.option("--table", default=None, help="Only this table.")
@click.option("--failed", is_flag=True, help="Only expectations that did not hold.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def quality_command(
    env: str, run_id: str | None, table: str | None, failed: bool, fmt: str
) -> None:
    """Expectation results of a run, from lakeforge.quality_results."""
    from pyspark.sql import functions as F

    from lakeforge.lineage.system_tables import QUALITY_RESULTS

    spark = session_for(env, "lakeforge:quality")
    if not spark.catalog.tableExists(QUALITY_RESULTS):
        raise SqlError(
            Code.TABLE_NOT_FOUND, "no expectation results yet (no run with expectations)"
        )
    df = spark.table(QUALITY_RESULTS)
    if run_id is None:
        newest = df.orderBy(df.recorded_at.desc()).select("run_id").first()
        if newest is None:
            raise SqlError(Code.TABLE_NOT_FOUND, "no expectation results yet")
        run_id = str(newest["run_id"])
    df = df.where(df.run_id == run_id)
    if table:
        df = df.where(df.table_name == table)
    if failed:
        df = df.where(~df.success)
    cols = [
        "table_name",
        "table_version",
        "expectation",
        "action",
        "success",
        "unexpected_count",
        "unexpected_percent",
        "observed_value",
        "sample",
        "exception",
    ]
    df = df.withColumn("unexpected_percent", F.round("unexpected_percent", 3))
    rows = [tuple(r) for r in df.orderBy("table_name", "expectation").select(*cols).collect()]
    if fmt == "json":
        print_rows(cols, rows, "json")
        return
    console.print(rows_table(cols, rows, title=f"expectations of run {run_id}"))


def register(group: click.Group) -> None:
    group.add_command(expectations_command)
    group.add_command(suggest_command)
    group.add_command(quality_command)
