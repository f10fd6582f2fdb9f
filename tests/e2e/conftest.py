"""E2E fixtures: a scratch copy of the project driven through the real CLI in subprocesses.

Each CLI call is its own JVM with its own embedded Derby metastore in the scratch
project, so these never contend with the shared in-process session's metastore.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

BIN = Path(sys.executable).parent


@dataclass
class Project:
    root: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
        env["LAKEFORGE_JARS_DIR"] = str(REPO / ".lakeforge" / "jars")
        env.pop("LAKEFORGE_ENV", None)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: int = 600
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(args),
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def lakeforge(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "lakeforge"), *args, check=check)

    def sql_json(self, query: str) -> list[dict[str, Any]]:
        out = self.lakeforge("sql", query, "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def new_retail_project(root: Path) -> Project:
    """The flagship example copied into a scratch project (no data yet)."""
    shutil.copytree(REPO / "jobs", root / "jobs")
    shutil.copytree(REPO / "conf", root / "conf")
    return Project(root)


@pytest.fixture(scope="module")
def retail_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The flagship example in a scratch project, with days 1-3 of its feeds delivered."""
    project = new_retail_project(tmp_path_factory.mktemp("retail-project"))
    project.run(
        sys.executable, "jobs/retail/generate_data.py", "--days", "3", "--out", "data/raw/retail"
    )
    return project
