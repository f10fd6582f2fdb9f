"""Training-set commands: ``publish``, ``reproduce``, ``training-sets`` and ``export``.

Kept out of ``cli/main.py`` like the other command families; :func:`register` adds them
to the ``lakeforge`` group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from lakeforge.cli.context import env_option, project_root, session_for
from lakeforge.cli.output import console, err_console, rows_table


def register(group: click.Group) -> None:
    """Add the training-set commands to ``group``."""
    group.add_command(publish)
    group.add_command(reproduce)
    group.add_command(training_sets)
    group.add_command(export)


def _splits_table(title: str, manifest: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    for col, justify in (("split", "left"), ("rows", "right"), ("checksum", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, s in manifest["splits"].items():
        table.add_row(name, str(s["rows"]), s["checksum"])
    return table


@click.command()
@click.argument("spec_file", metavar="SPEC.yml", type=click.Path(path_type=Path))
@env_option
@click.option("--run-id", default=None, help="Use this run id instead of a new one.")
@click.option(
    "--mlflow",
    "to_mlflow",
    is_flag=True,
    help="Also log the set on a new MLflow run (extra [mlflow]; MLFLOW_TRACKING_URI, "
    "MLFLOW_EXPERIMENT_NAME from the environment).",
)
def publish(spec_file: Path, env: str, run_id: str | None, to_mlflow: bool) -> None:
    """Publish a training set: pinned inputs, point-in-time join, splits, one commit.

    \b
    lakeforge publish spec.yml
    Prints the new set's id; the manifest goes to training_sets/<name>/<id>.json.
    """
    if to_mlflow:
        from lakeforge.training.mlflow_log import import_mlflow

        import_mlflow()  # a missing extra fails before Spark starts
    from lakeforge.config.loader import find_project_root
    from lakeforge.training.publish import publish as publish_set
    from lakeforge.training.spec import load_training_spec

    spec = load_training_spec(spec_file)  # config errors before any JVM starts
    root = find_project_root(spec_file.resolve().parent) or project_root()
    err_console.print(f"lakeforge: starting Spark to publish '{spec.name}' (env {env})")
    spark = session_for(env, f"lakeforge:publish:{spec.name}")
    result = publish_set(spark, spec, root, run_id=run_id)
    m = result.manifest
    console.print(_splits_table(f"{result.id}: {result.table} version {result.table_version}", m))
    inputs = ", ".join(f"{i['table']}@{i['version']}" for i in m["inputs"])
    console.print(f"inputs: {escape(inputs)}", markup=True)
    console.print(f"manifest: {escape(str(result.manifest_path))}", markup=True)
    if to_mlflow:
        from lakeforge.training.mlflow_log import log_training_set

        logged = log_training_set(result.manifest)
        console.print(f"mlflow: logged on run {logged.run_id}")
    click.echo(result.id)


@click.command()
@click.argument("set_id", metavar="ID")
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Compare row counts and checksums per split with the manifest.",
)
@env_option
def reproduce(set_id: str, verify: bool, env: str) -> None:
    """Rebuild a training set from the input versions its manifest pinned.

    ID is a set id (see ``lakeforge training-sets``) or a manifest JSON file. Fails with
    LF-TRN-002 naming the split(s) that differ, or LF-TRN-001 naming an input version
    that VACUUM removed.
    """
    from lakeforge.training.reproduce import reproduce as reproduce_set

    spark = session_for(env, "lakeforge:reproduce")
    result = reproduce_set(spark, set_id, verify=verify)
    inputs = ", ".join(f"{i['table']}@{i['version']}" for i in result.manifest["inputs"])
    if not verify:
        console.print(f"{result.id}: rebuilt from {escape(inputs)} (not verified)", markup=True)
        return
    console.print(f"{result.id}: rebuilt from {escape(inputs)}", markup=True)
    table = Table(title=f"{result.id}: splits", title_justify="left")
    for col in ("split", "rows", "checksum", "match"):
        table.add_column(col)
    for c in result.checks:
        table.add_row(c.split, str(c.rows_actual), c.checksum_actual, "[green]ok[/]")
    console.print(table)
    console.print(f"[green]verified[/] {result.id}: every split matches its manifest")


@click.command("training-sets")
@click.option("--name", default=None, help="Only the sets of this name.")
@env_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def training_sets(name: str | None, env: str, fmt: str) -> None:
    """List published training sets, newest first."""
    from lakeforge.training.registry import list_sets

    spark = session_for(env, "lakeforge:training-sets")
    sets = list_sets(spark, name)
    if fmt == "json":
        for s in sets:
            click.echo(json.dumps(s.__dict__))
        return
    columns = ["id", "name", "version", "created_at", "rows", "config_hash", "run_id"]
    rows = [
        (
            s.id,
            s.name,
            s.table_version,
            s.created_at,
            ", ".join(f"{k} {v}" for k, v in s.rows.items()),
            s.config_hash,
            s.run_id,
        )
        for s in sets
    ]
    console.print(rows_table(columns, rows))
    console.print(f"{len(rows)} training set(s)")


@click.command()
@click.argument("set_id", metavar="ID")
@click.option("--split", required=True, help="The split to export (train, validation, ...).")
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A missing or empty local directory.",
)
@env_option
def export(set_id: str, split: str, fmt: str, out: Path, env: str) -> None:
    """Write one split of a training set to files, with a SHA256SUMS list.

    \b
    lakeforge export late_delivery-v3 --split train --format csv --out exports/train
    """
    from lakeforge.training.export import export_split

    spark = session_for(env, "lakeforge:export")
    result = export_split(spark, set_id, split, fmt, out)
    for f in result.files:
        console.print(escape(str(f)), markup=True)
    console.print(
        f"{result.id} split {split}: {result.rows} rows, checksum {result.checksum} "
        f"(matches the manifest); sums in {escape(str(result.sums_file))}",
        markup=True,
    )
