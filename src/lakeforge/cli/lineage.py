"""``lakeforge lineage TABLE[@N]``: which runs, inputs and files produced a table version."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.tree import Tree

from lakeforge.cli.context import env_option, session_for
from lakeforge.cli.output import console
from lakeforge.errors import Code, TimeTravelError
from lakeforge.lineage.query import LineageNode, lineage


def _label(node: LineageNode) -> str:
    if node.run_id is None:
        return f"{node.table}@v{node.version} [dim](not written by a lakeforge step)[/]"
    rows = f", {node.rows_landed} rows" if node.rows_landed is not None else ""
    return f"[bold]{node.table}@v{node.version}[/] ({node.operation} by run {node.run_id}{rows})"


def _tree(node: LineageNode, tree: Tree, max_files: int) -> None:
    versions: dict[str, list[str]] = {}
    for obj in node.objects:
        if obj["version_id"]:
            versions.setdefault(str(obj["path"]), []).append(str(obj["version_id"]))
    for path in node.files[:max_files]:
        shown = ", ".join(versions.get(path, []))
        tree.add(f"[cyan]file[/] {path}" + (f" [dim](version {shown})[/]" if shown else ""))
    if len(node.files) > max_files:
        tree.add(f"[cyan]... {len(node.files) - max_files} more files[/]")
    for up in node.upstream:
        _tree(up, tree.add(_label(up)), max_files)


@click.command("lineage")
@click.argument("ref")
@env_option
@click.option(
    "--files",
    "max_files",
    default=10,
    show_default=True,
    help="Raw files to show per bronze version.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["tree", "json"]), default="tree", show_default=True
)
def lineage_command(ref: str, env: str, max_files: int, fmt: str) -> None:
    """Show the upstream table versions, runs and raw files behind TABLE[@VERSION]."""
    from lakeforge.config.table_refs import parse_table_ref
    from lakeforge.steps.versions import resolve_version

    try:
        parsed = parse_table_ref(ref)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None
    spark = session_for(env, "lakeforge:lineage")
    version = resolve_version(spark, ref)
    node = lineage(spark, parsed.name, version)
    if fmt == "json":
        click.echo(json.dumps(asdict(node), indent=2))
        return
    root = Tree(_label(node))
    _tree(node, root, max_files)
    console.print(root)


def register(group: click.Group) -> None:
    group.add_command(lineage_command)
