"""``lakeforge diff`` and ``lakeforge restore``: compare and roll back Delta table versions.

Kept out of ``cli/main.py`` so time travel can grow without touching the core commands;
:func:`register` adds the commands to the ``lakeforge`` group.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from lakeforge.cli.context import env_option, session_for
from lakeforge.cli.output import console, err_console, rows_table
from lakeforge.config.table_refs import VersionedRef, parse_table_ref
from lakeforge.errors import Code, TimeTravelError


def register(group: click.Group) -> None:
    """Add the time-travel commands to ``group``."""
    group.add_command(diff)
    group.add_command(restore)


def _ref(text: str) -> VersionedRef:
    try:
        return parse_table_ref(text)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None


@click.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--keys",
    default=None,
    help="Comma-separated key columns (order_id,line). Without: compare whole rows.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@env_option
def diff(old: str, new: str, keys: str | None, fmt: str, env: str) -> None:
    """Compare two versions of a table: schema changes, rows added / removed / changed.

    \b
    lakeforge diff silver.orders@1 silver.orders@3 --keys order_id
    lakeforge diff silver.orders@2026-11-01 silver.orders     (second: latest)
    """
    from lakeforge.timetravel.diff import diff_versions

    old_ref, new_ref = _ref(old), _ref(new)
    if old_ref.name != new_ref.name:
        raise TimeTravelError(
            Code.BAD_TABLE_REF,
            f"{old} and {new} name different tables: diff compares versions of one table",
        )
    key_list = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    spark = session_for(env, "lakeforge:diff")
    result = diff_versions(spark, old_ref.name, old_ref, new_ref, keys=key_list)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    _print_diff(result.to_dict())


def _print_diff(d: dict[str, Any]) -> None:
    keys = ", ".join(d["keys"]) if d["keys"] else "none: whole rows"
    console.print(
        f"{d['table']}: version {d['old_version']} -> {d['new_version']} (keys: {keys})",
        markup=False,
    )
    schema = d["schema"]
    if any(schema.values()):
        table = Table(title="schema changes", title_justify="left")
        for col in ("change", "column", "old type", "new type"):
            table.add_column(col)
        for c in schema["added"]:
            table.add_row("added", c["name"], "", c["type"])
        for c in schema["removed"]:
            table.add_row("removed", c["name"], c["type"], "")
        for c in schema["retyped"]:
            table.add_row("retyped", c["name"], c["old_type"], c["new_type"])
        console.print(table)
    else:
        console.print("schema: unchanged")
    # changed is None without keys: a modified row is one removed plus one added.
    names = ["old", "new", "added", "removed", "changed", "unchanged"]
    counts = tuple("-" if d["rows"][n] is None else d["rows"][n] for n in names)
    console.print(rows_table(names, [counts], title="rows"))
    for category, sample in d["samples"].items():
        if sample:
            columns = list(sample[0])
            console.print(
                rows_table(
                    columns,
                    [tuple(r[c] for c in columns) for r in sample],
                    title=f"{category} (first {len(sample)})",
                )
            )


@click.command()
@click.argument("table")
@click.option(
    "--to-version", "version", type=click.IntRange(min=0), required=True, help="Version to restore."
)
@click.option("--run-id", default=None, help="Record this run id instead of a new one.")
@env_option
def restore(table: str, version: int, run_id: str | None, env: str) -> None:
    """Restore a table to an earlier version, as one new Delta commit; prints its version.

    \b
    lakeforge restore silver.orders --to-version 2
    """
    from lakeforge.results import new_run_id
    from lakeforge.timetravel.restore import restore_table

    ref = _ref(table)
    if not ref.is_latest:
        raise TimeTravelError(
            Code.BAD_TABLE_REF, f"give the version with --to-version, not in the name ({table})"
        )
    spark = session_for(env, "lakeforge:restore")
    rid = run_id or new_run_id()
    commit = restore_table(spark, ref.name, version, rid)
    if commit.committed_now:
        note = f"restored {commit.table} to version {version} as new version {commit.version}"
        note += f" (run {rid})"
    else:
        note = f"{commit.table} is already at version {version}: nothing to restore"
    err_console.print(note, markup=False)
    click.echo(commit.version)
