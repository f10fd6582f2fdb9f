"""CLI commands that must work without a JVM: validate, plan, submit-args; error format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeforge.cli.main import cli
from tests.helpers import MINIMAL_PIPELINE, REPO, make_project


def invoke(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    runner = CliRunner()
    old = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        res = runner.invoke(cli, list(args))
    finally:
        os.chdir(old)
    return res.exit_code, res.output


def test_validate_ok(tmp_path: Path) -> None:
    code, out = invoke("validate", str(make_project(tmp_path)))
    assert code == 0
    assert "ok" in out and "3 steps" in out


def test_validate_reports_every_problem_one_line_each(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace("format: csv", "format: xls").replace(
        "keys: [order_id]", "kees: [order_id]"
    )
    path = make_project(tmp_path, text)
    code, out = invoke("validate", str(path))
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error ")]
    assert len(errors) == 2
    assert any("LF-CFG-004" in e and "pipeline.yml:7" in e for e in errors)
    assert any("LF-CFG-002" in e and "[silver.orders.kees]" in e for e in errors)
    assert "Traceback" not in out


def test_debug_reraises(tmp_path: Path) -> None:
    path = make_project(tmp_path, MINIMAL_PIPELINE.replace("from: bronze.orders", "from: bronze.x"))
    runner = CliRunner()
    res = runner.invoke(cli, ["--debug", "plan", str(path)])
    assert res.exit_code == 1
    assert res.exception is not None and getattr(res.exception, "code", None) == "LF-CFG-005"


def test_plan_json(tmp_path: Path) -> None:
    code, out = invoke("plan", "--format", "json", str(make_project(tmp_path)))
    assert code == 0
    data = json.loads(out)
    assert [s["table"] for s in data["steps"]] == ["bronze.orders", "silver.orders", "gold.revenue"]
    assert data["steps"][1]["mode"] == "overwrite"
    assert data["steps"][2]["reads"] == ["silver.orders"]


def test_plan_cycle_exit_code(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE + "  a:\n    sql: SELECT * FROM gold.a\n"
    code, out = invoke("plan", str(make_project(tmp_path, text)))
    assert code == 1
    assert "LF-PLAN-001" in out and "gold.a -> gold.a" in out


def test_validate_never_imports_pyspark() -> None:
    """`validate` and `plan` must not start (or even import) the JVM side."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from lakeforge.cli.main import cli\n"
        f"r = CliRunner().invoke(cli, ['validate', {str(REPO / 'jobs/retail/pipeline.yml')!r}])\n"
        f"r2 = CliRunner().invoke(cli, ['plan', {str(REPO / 'jobs/retail/pipeline.yml')!r}])\n"
        "assert r.exit_code == 0 and r2.exit_code == 0, r.output + r2.output\n"
        "heavy = [m for m in ('pyspark', 'py4j', 'delta', 'boto3', 'great_expectations') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_submit_args_carry_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jars = tmp_path / "jars"
    monkeypatch.setenv("LAKEFORGE_JARS_DIR", str(jars))
    make_project(
        tmp_path,
        profiles={
            "local": "spark:\n  master: local[3]\n  conf: {spark.sql.shuffle.partitions: 3}\n"
            "jar_bundles: []\n"
        },
    )
    code, out = invoke("submit-args", cwd=tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:2] == ["--master", "local[3]"]
    confs = dict(lines[i + 1].split("=", 1) for i, v in enumerate(lines) if v == "--conf")
    assert confs["spark.sql.shuffle.partitions"] == "3"
    assert (
        confs["spark.sql.catalog.spark_catalog"]
        == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert confs["spark.sql.warehouse.dir"] == str((tmp_path / "lakehouse" / "warehouse").resolve())
    assert "--jars" not in lines


def test_help_lists_commands() -> None:
    code, out = invoke("--help")
    assert code == 0
    for command in (
        "validate",
        "plan",
        "run",
        "sql",
        "history",
        "jars",
        "submit-args",
        "diff",
        "restore",
        "lineage",
    ):
        assert command in out
