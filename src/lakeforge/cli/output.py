"""Rendering for the CLI: errors, run summaries, query results."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lakeforge.results import RunResult, StepResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

# Piped output (CI logs, files) gets a wide fixed width instead of 80 wrapped columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def print_error_lines(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"[bold red]error[/] {escape(line)}", markup=True, soft_wrap=True)


def version_text(step: StepResult) -> str:
    """``v3`` for a new version, ``v3 (unchanged)`` when the step had nothing to commit."""
    if step.version is None:
        return "-"
    return f"v{step.version}" if step.committed else f"v{step.version} (unchanged)"


def step_line(step: StepResult) -> str:
    if step.status != "ok":
        return f"  {step.table}: {step.status}"
    extra = ""
    if step.kind == "conform":
        extra = f", {step.rows_quarantined} quarantined, {step.rows_deduplicated} deduplicated"
        if step.rows_dropped:
            extra += f", {step.rows_dropped} dropped"
        if step.expectations:
            extra += f", expectations {step.expectations - step.expectations_failed}/"
            extra += f"{step.expectations} held"
    elif step.kind == "ingest":
        extra = f" from {step.files} new file(s)"
    return (
        f"  {step.table}: {step.rows_written} rows landed{extra} -> {version_text(step)} "
        f"({step.seconds:.1f}s)"
    )


def summary_table(result: RunResult) -> Table:
    colour = "green" if result.ok else "red"
    table = Table(
        title=f"run {result.run_id} - {result.pipeline} (env {result.env}): "
        f"[{colour}]{result.status}[/] in {result.seconds:.1f}s",
        title_justify="left",
    )
    for col, justify in (
        ("step", "left"),
        ("kind", "left"),
        ("mode", "left"),
        ("status", "left"),
        ("rows in", "right"),
        ("landed", "right"),
        ("quarantined", "right"),
        ("dropped", "right"),
        ("deduplicated", "right"),
        ("version", "right"),
        ("seconds", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in result.steps:
        status = {"ok": "[green]ok[/]", "failed": "[red]failed[/]"}.get(s.status, s.status)
        done = s.status == "ok"
        table.add_row(
            s.table,
            s.kind,
            s.mode,
            status,
            str(s.rows_read) if done else "-",
            str(s.rows_written) if done else "-",
            str(s.rows_quarantined) if done else "-",
            str(s.rows_dropped) if done else "-",
            str(s.rows_deduplicated) if done else "-",
            version_text(s),
            f"{s.seconds:.1f}",
        )
    return table


def accounting_line(result: RunResult) -> str:
    done = [s for s in result.steps if s.status == "ok" and s.accounted]
    rows_in = sum(s.rows_read for s in done)
    landed = sum(s.rows_written for s in done)
    quarantined = sum(s.rows_quarantined for s in done)
    deduplicated = sum(s.rows_deduplicated for s in done)
    dropped = sum(s.rows_dropped for s in done)
    ok = all(s.balanced for s in done)
    mark = "[green]ok[/]" if ok else "[red]VIOLATED[/]"
    return (
        f"row accounting (ingest + conform steps): rows in {rows_in} = landed {landed} "
        f"+ quarantined {quarantined} + dropped {dropped} + deduplicated {deduplicated}: {mark}"
    )


def quality_lines(result: RunResult) -> list[str]:
    """One line per step with expectations: how many held, and where the report is."""
    out = []
    for s in result.steps:
        if s.expectations:
            held = s.expectations - s.expectations_failed
            colour = "green" if not s.expectations_failed else "yellow"
            out.append(
                f"  {s.table}: [{colour}]{held}/{s.expectations} expectations held[/]"
                + (f" - report {escape(s.quality_report)}" if s.quality_report else "")
            )
    return out


def rows_table(columns: list[str], rows: list[tuple[Any, ...]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        # Text, not markup: data such as "[x]" must print as is.
        table.add_row(*[Text("NULL" if v is None else str(v)) for v in row])
    return table


# The --format of every command whose output is rows (what print_rows writes).
rows_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    """Print query rows as a table (``fmt="table"``), JSON lines or CSV: the one row writer
    of the CLI."""
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        console.print(rows_table(columns, rows))
        console.print(f"{len(rows)} row(s)")


def collect_printable(df: DataFrame, limit: int) -> list[tuple[Any, ...]]:
    """At most ``limit`` rows of ``df`` as Python values, for printing.

    Spark's dates and timestamps span years 1 to 294247 (and before year 1); Python's stop
    at 9999, so collecting ``DATE'+99999-01-01'`` raises. Then the query is collected
    again with every date and timestamp column (or a struct, array or map holding one)
    cast to text, as Spark spells it: the value prints instead of a traceback.
    """
    limited = df.limit(limit)
    try:
        return [tuple(r) for r in limited.collect()]
    except (ValueError, OverflowError, OSError):
        if not any(_holds_datetime(f.dataType) for f in df.schema.fields):
            raise
    from pyspark.sql import functions as F

    # Positional names: a result may have duplicate or empty column names.
    fields = df.schema.fields
    renamed = limited.toDF(*[f"_c{i}" for i in range(len(fields))])
    cols = [
        F.col(f"_c{i}").cast("string") if _holds_datetime(f.dataType) else F.col(f"_c{i}")
        for i, f in enumerate(fields)
    ]
    return [tuple(r) for r in renamed.select(*cols).collect()]


def _holds_datetime(data_type: DataType) -> bool:
    from pyspark.sql.types import (
        ArrayType,
        DateType,
        MapType,
        StructType,
        TimestampNTZType,
        TimestampType,
    )

    if isinstance(data_type, DateType | TimestampType | TimestampNTZType):
        return True
    if isinstance(data_type, ArrayType):
        return _holds_datetime(data_type.elementType)
    if isinstance(data_type, MapType):
        return _holds_datetime(data_type.keyType) or _holds_datetime(data_type.valueType)
    if isinstance(data_type, StructType):
        return any(_holds_datetime(f.dataType) for f in data_type.fields)
    return False
