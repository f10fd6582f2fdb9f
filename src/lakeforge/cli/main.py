"""``lakeforge``: validate, plan and run pipelines; query and inspect tables.

One error handler for every command: a red line per problem with its stable code,
exit status 1, and no traceback unless ``--debug``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lakeforge.cli.context import env_option, project_root, session_for
from lakeforge.cli.output import (
    accounting_line,
    collect_printable,
    console,
    err_console,
    print_error_lines,
    print_rows,
    quality_lines,
    rows_format_option,
    step_line,
    summary_table,
)
from lakeforge.errors import Code, LakeforgeError, SqlError
from lakeforge.redaction import install_redacted_output, redact_error, redacted_output
from lakeforge.runtime.spark_errors import is_spark_error, translate
from lakeforge.version import __version__


class LakeforgeGroup(click.Group):
    """Routes every lakeforge error through one handler.

    Everything a command prints goes through the secrets redactor (``lakeforge.redaction``):
    its stdout and stderr are wrapped, and errors are redacted before they are printed or
    re-raised (``--debug``).
    """

    def invoke(self, ctx: click.Context) -> Any:
        with redacted_output():
            try:
                return super().invoke(ctx)
            except LakeforgeError as exc:
                redact_error(exc)
                if ctx.obj and ctx.obj.get("debug"):
                    raise
                print_error_lines(exc.lines())
                sys.exit(1)
            except Exception as exc:
                # Spark, Delta and py4j failures: one coded line too (runtime/spark_errors.py).
                if not is_spark_error(exc) or (ctx.obj and ctx.obj.get("debug")):
                    raise
                error = translate(exc)
                redact_error(error)
                print_error_lines(error.lines())
                sys.exit(1)


@click.group(cls=LakeforgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lakeforge")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative lakehouse pipelines on Spark and Delta Lake.

    \b
    lakeforge validate jobs/retail/pipeline.yml     check config, no JVM
    lakeforge plan jobs/retail/pipeline.yml         ordered steps, no JVM
    lakeforge run jobs/retail/pipeline.yml          bronze -> silver -> gold
    lakeforge sql "SELECT * FROM gold.daily_revenue"
    lakeforge history gold.daily_revenue
    lakeforge publish spec.yml
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _is_training_spec(file: Path) -> bool:
    """A cheap look at the top-level keys (full parsing, with lines, comes after)."""
    from lakeforge.config.yaml_source import load_yaml

    # The same guarded reader as the loaders (UTF-8, size and alias limits); a file it
    # refuses is reported, located, by the pipeline loader.
    doc, _ = load_yaml(file)
    data = doc.data if doc is not None else None
    return isinstance(data, dict) and "labels" in data and "bronze" not in data


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@env_option
def validate(files: tuple[Path, ...], env: str) -> None:
    """Check pipeline files (YAML, keys, types, references, cycles) without Spark.

    A file with a top-level ``labels:`` key is checked as a training-set spec.
    """
    from lakeforge.errors import ConfigError
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline

    failed = False
    for file in files:
        try:
            if _is_training_spec(file):
                from lakeforge.training.spec import load_training_spec

                spec = load_training_spec(file)
                console.print(
                    f"[green]ok[/] {file}: training set '{spec.name}', "
                    f"{len(spec.features)} feature source(s), "
                    f"splits {', '.join(spec.splits.ranges().ranges)}"
                )
                continue
            plan = build_plan(load_pipeline(file, env))
            console.print(
                f"[green]ok[/] {file}: pipeline '{plan.pipeline}', {len(plan.steps)} steps (env {env})"
            )
        except (ConfigError, LakeforgeError) as exc:
            failed = True
            print_error_lines(redact_error(exc).lines())
    if failed:
        sys.exit(1)


def select_option(func: Any) -> Any:
    return click.option(
        "--select",
        "-s",
        "select",
        multiple=True,
        metavar="SELECTOR",
        help="Only these steps: TABLE, TABLE+ (and downstream), +TABLE (and upstream), "
        "+TABLE+, or a layer (bronze, silver, gold); repeat for a union.",
    )(func)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@env_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "text", "json"]),
    default="table",
    show_default=True,
)
@select_option
def plan(file: Path, env: str, fmt: str, select: tuple[str, ...]) -> None:
    """Show what a run would do, in order, without Spark (the dry run)."""
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.explain import plan_table, plan_text
    from lakeforge.plan.load import load_pipeline
    from lakeforge.plan.select import select as select_steps

    loaded = load_pipeline(file, env)
    the_plan = select_steps(build_plan(loaded), select)
    if fmt == "json":
        steps = [
            {
                "table": s.table,
                "kind": s.kind,
                "mode": s.mode,
                "reads": list(s.reads),
                "declared_at": str(s.location),
            }
            for s in the_plan.steps
        ]
        click.echo(
            json.dumps(
                {
                    "pipeline": the_plan.pipeline,
                    "env": env,
                    "config_hash": the_plan.config_hash,
                    "steps": steps,
                },
                indent=2,
            )
        )
    elif fmt == "text":
        click.echo(plan_text(the_plan, loaded))
    else:
        console.print(plan_table(the_plan))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@env_option
@click.option("--run-id", default=None, help="Use this run id instead of a new one.")
@click.option(
    "--json-result",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the run result as JSON to this file.",
)
@click.option(
    "--data-env",
    default=None,
    help="Data environment (e.g. training, serving): expectations bound to other "
    "environments are skipped.",
)
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="If another run of this pipeline holds its lock, wait up to this long for it "
    "(0: fail at once with LF-RUN-011).",
)
@select_option
def run(
    file: Path,
    env: str,
    run_id: str | None,
    json_result: Path | None,
    data_env: str | None,
    wait: float,
    select: tuple[str, ...],
) -> None:
    """Run a pipeline: ingest to bronze, conform to silver, build gold."""
    from lakeforge.pipeline.executor import run_pipeline
    from lakeforge.plan.load import load_pipeline
    from lakeforge.runtime.lock import Holder

    loaded = load_pipeline(file, env)  # config errors before any JVM starts
    name = loaded.pipeline.name

    def waiting(holder: Holder | None) -> None:
        who = f"run {holder.run_id} (pid {holder.pid})" if holder else "another run"
        err_console.print(f"lakeforge: waiting for {who} of '{name}' (up to {wait:g}s)")

    result = run_pipeline(
        loaded,
        run_id=run_id,
        on_step=lambda s: err_console.print(step_line(s)),
        data_env=data_env,
        wait=wait,
        on_wait=waiting,
        on_start=lambda: err_console.print(f"lakeforge: starting Spark for '{name}' (env {env})"),
        select=select,
    )
    console.print(summary_table(result))
    console.print(accounting_line(result))
    for line in quality_lines(result):
        console.print(line)
    if json_result is not None:
        json_result.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.ok:
        print_error_lines([result.error or "run failed"])
        sys.exit(1)


@cli.command()
@click.argument("query")
@env_option
@click.option("--limit", default=100, show_default=True, help="Rows to show at most.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "fast", "spark"]),
    default="auto",
    show_default=True,
    help="fast: delta-rs + DataFusion, no JVM, read-only queries over lakeforge's tables; "
    "spark: a Spark session (DDL, every function, any catalog table); auto: fast when it "
    "can answer the query, else Spark.",
)
@rows_format_option
def sql(query: str, env: str, limit: int, engine: str, fmt: str) -> None:
    """Run a SQL query against the lakehouse (tables by name, time travel included).

    The engine that answered, and why not the fast one, is printed on stderr."""
    from lakeforge.config.loader import load_profile
    from lakeforge.sql.engine import Engine, answer

    root = project_root()
    profile, _ = load_profile(env, root)
    got = answer(query, Engine(engine), profile, root, limit, lambda q, n: _spark_rows(q, n, env))
    print_rows(got.rows.columns, got.rows.rows, fmt)
    err_console.print(f"lakeforge: {got.summary()}")


def _spark_rows(query: str, limit: int, env: str) -> Any:
    from lakeforge.config.table_refs import rewrite_sql
    from lakeforge.errors import TimeTravelError
    from lakeforge.sql.fast import Rows

    # silver.orders@3 -> silver.orders VERSION AS OF 3; checked before Spark starts.
    try:
        query = rewrite_sql(query)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None
    spark = session_for(env, "lakeforge:sql")
    # Spark's errors are translated by the group's handler (LF-SQL-001 for a refused
    # statement); values Python cannot hold (year 99999) come back as text.
    df = spark.sql(query)
    return Rows(list(df.columns), collect_printable(df, limit))


@cli.command()
@click.argument("table")
@env_option
@click.option("--limit", default=20, show_default=True)
@rows_format_option
def history(table: str, env: str, limit: int, fmt: str) -> None:
    """Delta versions of a table, newest first, with the run that wrote each."""
    spark = session_for(env, "lakeforge:history")
    if not spark.catalog.tableExists(table):
        raise SqlError(Code.TABLE_NOT_FOUND, f"table {table} does not exist")
    from delta.tables import DeltaTable

    df = (
        DeltaTable.forName(spark, table)
        .history(limit)
        .selectExpr(
            "version",
            "CAST(timestamp AS STRING) AS timestamp",
            "operation",
            "get_json_object(userMetadata, '$.lakeforge_run_id') AS run_id",
            "operationMetrics['numOutputRows'] AS rows_written",
        )
    )
    print_rows(df.columns, [tuple(r) for r in df.collect()], fmt)


@cli.group()
def jars() -> None:
    """The project's jar cache: the Delta, Avro, S3A (hadoop-aws) and PostgreSQL driver
    bundles."""


@jars.command("resolve")
@click.argument("bundles", nargs=-1)
@click.option("--force", is_flag=True, help="Resolve again even if cached.")
@env_option
def jars_resolve(bundles: tuple[str, ...], force: bool, env: str) -> None:
    """Fetch pinned jars from Maven Central into the cache (once; offline afterwards)."""
    from lakeforge.config.loader import load_profile
    from lakeforge.runtime.jars import resolve
    from lakeforge.runtime.session import jars_dir_for

    root = project_root()
    profile, _ = load_profile(env, root)
    directory = jars_dir_for(profile, root)
    for bundle in bundles or tuple(profile.jar_bundles):
        files = resolve(bundle, directory, force=force)
        size = sum(f.stat().st_size for f in files) / 1e6
        err_console.print(
            f"jars '{bundle}': {len(files)} jars, {size:.1f} MB in {directory / bundle}"
        )


@jars.command("warm")
@click.option("--force", is_flag=True, help="Make the archive again even if there is one.")
@env_option
def jars_warm(force: bool, env: str) -> None:
    """Make the JVM class archive that starts every later lakeforge process faster.

    Runs a small pipeline in a process of its own (about 90 s, once per machine, Java
    and pyspark); the archive (~240 MB) goes to the per-user cache. Profiles map it unless
    they set `spark.class_archive: false`.
    """
    from lakeforge.config.loader import load_profile
    from lakeforge.runtime import cds
    from lakeforge.runtime.session import jars_dir_for

    root = project_root()
    profile, _ = load_profile(env, root)
    bundles = ",".join(profile.jar_bundles)

    def workload(work: Path, dump: Path) -> list[str]:
        return [sys.executable, "-m", "lakeforge.cli.warmup", str(work), str(dump), bundles]

    warmed = cds.warm(workload, jars_dir_for(profile, root), force=force)
    made = f"made in {warmed.seconds:.0f}s" if warmed.made else "already made"
    err_console.print(f"class archive: {warmed.size_mb:.0f} MB in {warmed.path} ({made})")


@cli.command("redact-stream", hidden=True)
@env_option
@click.argument("command_args", nargs=-1)
def redact_stream(env: str, command_args: tuple[str, ...]) -> None:
    """Copy stdin to stdout with the secrets of ``lakeforge COMMAND_ARGS`` masked.

    spark-submit.sh pipes the JVM's stderr through it (the JVM is not a child of Python).
    """
    from lakeforge.runtime.stderr_redact import copy_redacted, register_config_secrets

    register_config_secrets(env, command_args)
    copy_redacted(sys.stdin, sys.stdout)


@cli.command("submit-args")
@env_option
def submit_args(env: str) -> None:
    """Print spark-submit options for a profile, one per line (used by spark-submit.sh).

    Settings that hold a secret (a resolved ``${env:}`` value) are not printed: they go to
    ``.lakeforge/secrets/submit-<env>.properties`` (mode 0600, rewritten on every call),
    printed as ``--properties-file``, so no secret reaches a command line.
    """
    from lakeforge.config.loader import load_profile
    from lakeforge.runtime.session import session_settings
    from lakeforge.runtime.submit import submit_options

    root = project_root()
    profile, _ = load_profile(env, root)
    for option in submit_options(session_settings(profile, root), root, env):
        click.echo(option)


# Time-travel commands live in their own module; imported here, after `cli` exists, so
# that module can grow without touching this one.
from lakeforge.cli import timetravel as _timetravel  # noqa: E402

_timetravel.register(cli)

from lakeforge.cli import lineage as _lineage  # noqa: E402

_lineage.register(cli)

from lakeforge.cli import quality as _quality  # noqa: E402

_quality.register(cli)

from lakeforge.cli import training as _training  # noqa: E402

_training.register(cli)

from lakeforge.cli import ingest as _ingest  # noqa: E402

_ingest.register(cli)

from lakeforge.cli import land as _land  # noqa: E402

_land.register(cli)

from lakeforge.cli import serve as _serve  # noqa: E402

_serve.register(cli)


def main() -> None:
    """Console-script entry point."""
    # For the process's life, so a traceback printed after `cli` returns is redacted too.
    install_redacted_output()
    # What the JVM writes to fd 2 bypasses Python: once the config yields a secret, fd 2
    # goes through a redacting pipe until the command returns (runtime/stderr_redact.py).
    from lakeforge.runtime import stderr_redact

    stderr_redact.arm()
    try:
        cli(prog_name="lakeforge")
    finally:
        stderr_redact.stop()


if __name__ == "__main__":
    main()
