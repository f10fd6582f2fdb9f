"""Read YAML while remembering where every key and value came from.

PyYAML's ``safe_load`` throws away positions, so we compose the node graph ourselves
and build plain Python data alongside a map from key path to 1-based line. That map
is what lets a pydantic error on ``("silver", "orders", "columns")`` point at a line.
Duplicate keys, which YAML silently lets the last one win, are reported as errors.
No pyspark import here: ``lakeforge validate`` must start in well under a second.

Hostile files fail fast with a coded error instead of a traceback: bytes that are not
UTF-8 (``LF-CFG-013``, naming line and byte offset), and files over the limits below
(``LF-CFG-014``): a YAML "billion laughs" file is ten lines, but each alias level
multiplies the nodes it stands for, so the limit is on nodes *after* alias expansion,
counted on the composed graph (each node once) before anything is expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakeforge.errors import Code, ConfigIssue

KeyPath = tuple[str | int, ...]

# A config file larger than this is refused before it is parsed.
MAX_FILE_BYTES = 1024 * 1024
# Nodes (mappings, sequences, scalars; keys included) the file stands for once every
# alias is expanded. A large pipeline has a few thousand; a 7-level alias bomb has 4.8 million.
MAX_NODES = 100_000


@dataclass
class YamlDocument:
    """A parsed YAML file: its data, its path, and the line of every key path."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # Value lines for scalars (block scalars start on the line after their key).
    value_lines: dict[KeyPath, int] = field(default_factory=dict)
    block_scalars: set[KeyPath] = field(default_factory=set)

    def line_of(self, path: KeyPath) -> int:
        """Line of the deepest known prefix of ``path`` (0 if none is known)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line:
                return line
        return 1 if self.data is not None else 0

    def value_line_of(self, path: KeyPath) -> int:
        """Line where the value at ``path`` starts (for block scalars: its first text line)."""
        line = self.value_lines.get(tuple(path))
        return line if line else self.line_of(path)


def _context(text: str, line: int, col: int) -> str:
    """Numbered source lines around a syntax error, dbt-style, with a caret."""
    rows = text.splitlines()
    out = []
    for n in range(max(1, line - 2), min(len(rows), line + 1) + 1):
        out.append(f"  {n:>4} | {rows[n - 1]}")
        if n == line:
            out.append("       | " + " " * max(col - 1, 0) + "^")
    return "\n".join(out)


def load_yaml(
    path: Path, display: str | None = None
) -> tuple[YamlDocument | None, list[ConfigIssue]]:
    """Parse ``path`` into a :class:`YamlDocument`.

    Args:
        path: the YAML file.
        display: how to name the file in errors (defaults to ``str(path)``).

    Returns:
        The document (None if it could not be parsed) and the issues found.
    """
    name = display or str(path)
    try:
        with path.open("rb") as fh:
            # Read at most one byte past the limit: /dev/zero or a FIFO must not hang us.
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, [ConfigIssue(Code.FILE_NOT_FOUND, name, 0, "", "file not found")]
    except OSError as exc:
        return None, [ConfigIssue(Code.FILE_NOT_FOUND, name, 0, "", f"cannot read: {exc}")]
    if len(data) > MAX_FILE_BYTES:
        return None, [_too_large(name)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [not_utf8_issue(name, data, exc.start)]
    return parse_yaml_text(text, name)


def not_utf8_issue(name: str, data: bytes, offset: int) -> ConfigIssue:
    """``LF-CFG-013`` for the invalid byte at ``offset`` of ``data``: its line and offset."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return ConfigIssue(
        Code.NOT_UTF8,
        name,
        line,
        "",
        f"not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
        f"(line {line}, byte {column} of the line); save the file as UTF-8",
    )


def _too_large(name: str) -> ConfigIssue:
    return ConfigIssue(
        Code.YAML_TOO_LARGE,
        name,
        0,
        "",
        f"file is over the {MAX_FILE_BYTES // 1024} KiB limit for config files",
    )


def expanded_size(root: yaml.Node, limit: int | None = None) -> int | None:
    """Nodes ``root`` stands for once aliases are expanded, or None for a recursive alias.

    Each composed node is visited once (memoised), so an alias bomb is measured in
    microseconds, not expanded. Counts are capped just past ``limit`` (default
    :data:`MAX_NODES`), so the numbers stay small.
    """
    cap = (MAX_NODES if limit is None else limit) + 1
    sizes: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_stack.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, cap)
            continue
        if key in sizes:
            continue
        if key in on_stack:
            return None
        on_stack.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_stack:
                return None
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_yaml_text(text: str, name: str) -> tuple[YamlDocument | None, list[ConfigIssue]]:
    """Parse YAML text; see :func:`load_yaml`."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return None, [_too_large(name)]
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except RecursionError:
        return None, [
            ConfigIssue(Code.YAML_TOO_LARGE, name, 0, "", "YAML nested too deeply to parse")
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = exc.problem or exc.context or "invalid YAML"
        detail = f"YAML syntax error: {problem}"
        if mark:
            detail += "\n" + _context(text, line, col)
        return None, [ConfigIssue(Code.YAML_SYNTAX, name, line, "", detail)]
    except yaml.YAMLError as exc:
        return None, [ConfigIssue(Code.YAML_SYNTAX, name, 0, "", f"YAML error: {exc}")]
    finally:
        loader.dispose()

    doc = YamlDocument(file=name, data=None)
    issues: list[ConfigIssue] = []
    if node is None:
        return doc, issues
    size = expanded_size(node)
    if size is None:
        return None, [
            ConfigIssue(Code.YAML_TOO_LARGE, name, 0, "", "an alias refers to itself (recursive)")
        ]
    if size > MAX_NODES:
        return None, [
            ConfigIssue(
                Code.YAML_TOO_LARGE,
                name,
                0,
                "",
                f"over {MAX_NODES:,} YAML nodes once aliases (*name) are expanded; "
                "config files are limited to that (an alias bomb?)",
            )
        ]
    constructor = yaml.SafeLoader("")

    def build(n: yaml.Node, path: KeyPath) -> Any:
        if isinstance(n, yaml.MappingNode):
            constructor.flatten_mapping(n)  # resolves YAML merge keys (<<)
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | bool | float) or key is None:
                    issues.append(
                        ConfigIssue(
                            Code.BAD_VALUE,
                            name,
                            key_node.start_mark.line + 1,
                            _dotted(path),
                            "mapping keys must be plain scalars",
                        )
                    )
                    continue
                key = str(key) if not isinstance(key, str) else key
                child = (*path, key)
                if key in out:
                    issues.append(
                        ConfigIssue(
                            Code.DUPLICATE_KEY,
                            name,
                            key_node.start_mark.line + 1,
                            _dotted(child),
                            f"duplicate key '{key}' (first defined on line {doc.lines[child]})",
                        )
                    )
                    continue
                doc.lines[child] = key_node.start_mark.line + 1
                out[key] = build(value_node, child)
            return out
        if isinstance(n, yaml.SequenceNode):
            items = []
            for index, item in enumerate(n.value):
                child = (*path, index)
                doc.lines[child] = item.start_mark.line + 1
                items.append(build(item, child))
            return items
        value_line = n.start_mark.line + 1
        if isinstance(n, yaml.ScalarNode) and n.style in ("|", ">"):
            value_line += 1
            doc.block_scalars.add(path)
        doc.value_lines[path] = value_line
        return constructor.construct_object(n, deep=True)

    try:
        doc.data = build(node, ())
    except RecursionError:
        return None, [
            ConfigIssue(Code.YAML_TOO_LARGE, name, 0, "", "YAML nested too deeply to parse")
        ]
    return doc, issues


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
