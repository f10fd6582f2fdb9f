"""Hostile config files fail fast with one coded issue: non-UTF-8 bytes (LF-CFG-013, with
line and byte offset) and files over the size / alias-expansion limits (LF-CFG-014)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from lakeforge.config import yaml_source
from lakeforge.config.yaml_source import MAX_FILE_BYTES, MAX_NODES, load_yaml
from lakeforge.errors import Code


def bomb(levels: int) -> str:
    """The classic "billion laughs": each level is nine aliases of the one before."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels + 1):
        refs = ",".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [7, 8])
def test_alias_bomb_fails_fast_and_small(tmp_path: Path, levels: int) -> None:
    f = tmp_path / "bomb.yml"
    f.write_text(bomb(levels))
    tracemalloc.start()
    t0 = time.monotonic()
    doc, issues = load_yaml(f, "bomb.yml")
    seconds = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert doc is None
    assert [i.code for i in issues] == [Code.YAML_TOO_LARGE]
    assert issues[0].file == "bomb.yml"
    assert seconds < 1.0  # unbounded: 13 s and 1.5 GB at 7 levels, MemoryError at 8
    assert peak < 20 * 1024 * 1024


def test_small_alias_use_still_loads(tmp_path: Path) -> None:
    """Anchors, aliases and merge keys within the limit load as before (3 levels: 819 nodes)."""
    f = tmp_path / "ok.yml"
    f.write_text(bomb(3) + "base: &base {x: 1}\nuse:\n  <<: *base\n  y: 2\n")
    doc, issues = load_yaml(f)
    assert issues == [] and doc is not None
    assert len(doc.data["a3"]) == 9 and doc.data["a3"][0][0][0] == ["lol"] * 9
    assert doc.data["use"] == {"x": 1, "y": 2}


def test_node_limit_is_the_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the limit at 50 (PyYAML is slow on 100,000 real nodes): a list of 49 items
    plus the list itself loads; one more item does not; nor does a list of 20 and two aliases of it (67 nodes)."""
    monkeypatch.setattr(yaml_source, "MAX_NODES", 50)
    ok = tmp_path / "ok.yml"
    ok.write_text("[" + ",".join(["1"] * 49) + "]\n")
    doc, issues = load_yaml(ok)
    assert issues == [] and doc is not None and len(doc.data) == 49
    over = tmp_path / "over.yml"
    over.write_text("[" + ",".join(["1"] * 50) + "]\n")
    assert [i.code for i in load_yaml(over)[1]] == [Code.YAML_TOO_LARGE]
    aliases = tmp_path / "aliases.yml"
    aliases.write_text("a: &a [" + ",".join(["1"] * 20) + "]\nb: [*a, *a]\n")
    assert [i.code for i in load_yaml(aliases)[1]] == [Code.YAML_TOO_LARGE]
    assert MAX_NODES == 100_000  # the real limit, as the README states


def test_recursive_alias_is_coded(tmp_path: Path) -> None:
    f = tmp_path / "loop.yml"
    f.write_text("a: &a [1, *a]\n")
    doc, issues = load_yaml(f)
    assert doc is None and [i.code for i in issues] == [Code.YAML_TOO_LARGE]


def test_deep_nesting_is_coded_not_recursion_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.yml"
    f.write_text("a: " + "[" * 600 + "]" * 600 + "\n")
    doc, issues = load_yaml(f)
    assert doc is None and [i.code for i in issues] == [Code.YAML_TOO_LARGE]


def test_file_over_size_limit_is_refused_unread(tmp_path: Path) -> None:
    f = tmp_path / "big.yml"
    f.write_text("# " + "x" * MAX_FILE_BYTES + "\nname: p\n")
    doc, issues = load_yaml(f)
    assert doc is None and [i.code for i in issues] == [Code.YAML_TOO_LARGE]


def test_endless_file_does_not_hang() -> None:
    """/dev/zero has no end: only MAX_FILE_BYTES + 1 bytes are read."""
    doc, issues = load_yaml(Path("/dev/zero"), "zero")
    assert doc is None and [i.code for i in issues] == [Code.YAML_TOO_LARGE]


def test_non_utf8_byte_names_line_and_offset(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yml"
    data = b"name: p\ndescription: caf" + b"\xe9" + b"\nbronze: {}\n"
    f.write_bytes(data)
    doc, issues = load_yaml(f, "latin1.yml")
    assert doc is None
    assert len(issues) == 1
    issue = issues[0]
    assert issue.code == Code.NOT_UTF8 and issue.file == "latin1.yml" and issue.line == 2
    offset = data.index(b"\xe9")
    assert f"byte offset {offset}" in issue.message and "0xe9" in issue.message
    assert issue.render().startswith(f"{Code.NOT_UTF8} latin1.yml:2")


def test_invalid_byte_on_first_line(tmp_path: Path) -> None:
    f = tmp_path / "first.yml"
    f.write_bytes(b"\xff\xfename: p\n")
    (issue,) = load_yaml(f)[1]
    assert issue.code == Code.NOT_UTF8 and issue.line == 1 and "byte offset 0" in issue.message


def test_profile_with_bad_byte_is_a_config_error(tmp_path: Path) -> None:
    """The profile loader goes through the same reader: a ConfigError, not a traceback."""
    from lakeforge.config.loader import load_profile
    from lakeforge.errors import ConfigError

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "local.yml").write_bytes(b"description: \xc3\x28\n")
    with pytest.raises(ConfigError) as exc:
        load_profile("local", tmp_path)
    assert exc.value.codes == [Code.NOT_UTF8]
