"""The bad-input corpus (tests/data/bad/, format in its README.md) as tests.

Every case folder is one test, parametrized by its name. A ``config_error`` case only loads
and plans its pipeline (no Spark: its test does not request the ``spark`` fixture); the
others run bronze + silver on the shared session and must match what ``case.yml`` states:
the outcome, the quarantine reasons, the rejected files, the run error's code, and the
hand-made row counts of every step, with rows in = landed + quarantined + dropped +
deduplicated. For CSV sources the data lines of the raw files are also counted here, in
plain Python, and must equal bronze's rows in: a row Spark loses between file and bronze
breaks that count.

The run cases share their runs (a run has a fixed cost, lock, system tables and run
records, that would otherwise be paid once per case): each case is loaded and planned from
its own copy, and the plans' steps are run in one pipeline run, case after case, each
ingest reading the path its own project would resolve. The executor stops a run at its first
failed step, so a case is never put after one that fails: the cases not reached run in the
next run (expected failures come last, so each costs one run of its own). Each test asserts
its case against the case's steps of that run; ``-k <case>`` runs one case alone.
"""

from __future__ import annotations

import glob
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from lakeforge.errors import LakeforgeError
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import LoadedPipeline, load_pipeline
from lakeforge.plan.steps import IngestStep, Plan, Step
from lakeforge.results import RunResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.results import StepResult

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
OUTCOMES = ("landed", "quarantined", "rejected_file", "config_error", "run_error")
COUNT_KEYS = {
    "in": "rows_read",
    "landed": "rows_written",
    "quarantined": "rows_quarantined",
    "dropped": "rows_dropped",
    "deduplicated": "rows_deduplicated",
}


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    about: str
    env: str | None
    outcome: str
    code: str | None
    reasons: tuple[str, ...]
    rejected: tuple[str, ...]
    rows: dict[str, dict[str, int]]
    multiline: bool  # CSV records may span lines: no line count
    alone: bool  # runs in a run of its own, never with other cases

    @classmethod
    def read(cls, folder: Path) -> Case:
        spec = yaml.safe_load(_about_as_text((folder / "case.yml").read_text())) or {}
        expect = spec.get("expect") or {}
        outcome = expect.get("outcome")
        assert outcome in OUTCOMES, f"{folder.name}/case.yml: expect.outcome {outcome!r}"
        if outcome in ("config_error", "run_error"):
            assert expect.get("code"), f"{folder.name}/case.yml: {outcome} needs expect.code"
        return cls(
            name=folder.name,
            folder=folder,
            about=str(spec.get("about", "")),
            env=spec.get("env"),
            outcome=outcome,
            code=expect.get("code"),
            reasons=tuple(expect.get("reasons") or ()),
            rejected=tuple(expect.get("rejected") or ()),
            rows={str(k): dict(v or {}) for k, v in (expect.get("rows") or {}).items()},
            multiline=bool(spec.get("multiline", False)),
            alone=bool(spec.get("alone", False)),
        )


def _about_as_text(text: str) -> str:
    """``about:`` is one line of prose, taken as it is: a ``: `` inside it (``multiLine:
    true``) would otherwise be YAML syntax. A quoted value is left to YAML."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("about:"):
            value = line[len("about:") :].strip()
            if value and value[0] not in "\"'":
                lines[i] = "about: " + json.dumps(value)
    return "\n".join(lines) + "\n"


def _cases() -> tuple[list[Case], dict[str, str]]:
    """The readable cases, and the folders whose case.yml is not (folder -> error): one
    broken case fails one test, not the collection of all."""
    cases: list[Case] = []
    broken: dict[str, str] = {}
    if not CORPUS.is_dir():
        return cases, broken
    for folder in sorted(CORPUS.iterdir()):
        if not folder.is_dir():
            continue
        try:
            cases.append(Case.read(folder))
        except Exception as exc:
            broken[folder.name] = f"{type(exc).__name__}: {exc}"
    return cases, broken


CASES, BROKEN = _cases()
CONFIG_CASES = [c for c in CASES if c.outcome == "config_error"]
RUN_CASES = [c for c in CASES if c.outcome != "config_error"]


def as_project(case: Case, tmp_path: Path) -> Path:
    """Copy the case into ``tmp_path`` as a project root (it needs a ``conf/`` folder);
    returns its pipeline file. Symlinks in a case are copied as links, not followed."""
    root = tmp_path / case.name
    shutil.copytree(case.folder, root, symlinks=True)
    (root / "conf").mkdir(exist_ok=True)
    return root / "pipeline.yml"


def load(case: Case, pipeline: Path) -> LoadedPipeline:
    return load_pipeline(pipeline, env=case.env) if case.env else load_pipeline(pipeline)


def test_corpus_is_large_enough_and_well_formed() -> None:
    assert not BROKEN, f"unreadable cases: {BROKEN}"
    assert len(CASES) >= 25, f"{len(CASES)} cases in {CORPUS}"
    for case in CASES:
        assert (case.folder / "pipeline.yml").is_file(), case.name
        assert case.about, f"{case.name}: case.yml needs `about:`"
        if case.outcome == "quarantined":
            assert case.reasons, f"{case.name}: a quarantined case names its reasons"
        if case.outcome == "rejected_file":
            assert case.rejected, f"{case.name}: a rejected_file case names its files"


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.name for c in CONFIG_CASES])
def test_config_error_case(case: Case, tmp_path: Path) -> None:
    pipeline = as_project(case, tmp_path)
    with pytest.raises(LakeforgeError) as info:
        build_plan(load(case, pipeline))
    codes = {i.code for i in getattr(info.value, "issues", ())} | {info.value.code}
    assert case.code in codes, f"{case.name}: expected {case.code}, got {info.value}"


@dataclass
class Ran:
    """A run case's share of a run: its pipeline and its steps' result, or why it has none."""

    loaded: LoadedPipeline | None = None
    result: RunResult | None = None
    error: BaseException | None = None
    reasons: set[str] = field(default_factory=set)  # quarantine reasons of its run's rows
    rejected: set[str] = field(default_factory=set)  # its files in lakeforge.rejected_files


@pytest.fixture(scope="module")
def ran(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spark: SparkSession
) -> dict[str, Ran]:
    """Every selected run case, run: together in as few runs as the executor allows, or
    alone when its case.yml says ``alone: true`` or names a profile (``env:``)."""
    from lakeforge.pipeline.executor import execute

    selected = {
        item.callspec.params["case"].name
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_run_case" and hasattr(item, "callspec")
    }
    root = tmp_path_factory.mktemp("bad-corpus")
    out: dict[str, Ran] = {}
    planned: dict[str, Plan] = {}
    together: list[Case] = []
    written: set[str] = set()
    for case in RUN_CASES:
        if case.name not in selected:
            continue
        out[case.name] = Ran()
        try:
            loaded = load(case, as_project(case, root))
            plan = build_plan(loaded)
        except Exception as exc:
            out[case.name].error = exc
            continue
        out[case.name].loaded = loaded
        if case.alone or case.env or written & set(plan.tables):
            try:
                out[case.name].result = execute(plan, spark, loaded.project_root)
            except Exception as exc:
                out[case.name].error = exc
            continue
        planned[case.name] = plan
        written |= set(plan.tables)
        together.append(case)

    # Expected failures last: the run stops at a failed step, and skips what comes after.
    pending = sorted(together, key=lambda c: c.outcome == "run_error")
    while pending:
        steps: list[Step] = []
        for case in pending:
            own = out[case.name].loaded
            assert own is not None
            steps += [relocated(s, own) for s in planned[case.name].steps]
        plan = Plan(
            pipeline="bad_corpus",
            env=planned[pending[0].name].env,
            config_hash="bad_corpus",
            file=str(root),
            steps=tuple(steps),
            directory=str(root),
        )
        try:
            result = execute(plan, spark, root)
        except Exception as exc:  # not a step's failure: every case of the run carries it
            for case in pending:
                out[case.name].error = exc
            break
        reached = [c for c in pending if share(planned[c.name], result) is not None]
        assert reached, f"run {result.run_id} reached no case: {result.error}"
        for case in reached:
            out[case.name].result = share(planned[case.name], result)
        pending = [c for c in pending if c not in reached]
    for name, reasons in quarantine_reasons(spark, out).items():
        out[name].reasons = reasons
    for name, rejected in rejected_files(spark, out).items():
        out[name].rejected = rejected
    return out


def relocated(step: Step, loaded: LoadedPipeline) -> Step:
    """The step run from another project root: an ingest reads the path its own project
    resolves (URIs and absolute paths unchanged)."""
    from lakeforge.io.files import resolve_source_path

    if isinstance(step, IngestStep):
        return replace(step, source_path=resolve_source_path(step.source_path, loaded.project_root))
    return step


def share(plan: Plan, run: RunResult) -> RunResult | None:
    """A case's share of a shared run, as its own run would have returned it; ``None`` when
    the run stopped before the case. The run stops at its first failed step, so the run's
    error is that step's: a case whose step failed carries it, a case before it succeeded."""
    tables = set(plan.tables)
    steps = [s for s in run.steps if s.table in tables]
    if all(s.status == "skipped" for s in steps):
        return None
    failed = any(s.status == "failed" for s in steps)
    return RunResult(
        run_id=run.run_id,
        pipeline=plan.pipeline,
        env=run.env,
        config_hash=plan.config_hash,
        status="failed" if failed else "succeeded",
        started_at=run.started_at,
        ended_at=run.ended_at,
        seconds=run.seconds,
        steps=steps,
        error=run.error if failed else None,
        error_code=run.error_code if failed else None,
    )


@pytest.mark.spark
@pytest.mark.parametrize("case", RUN_CASES, ids=[c.name for c in RUN_CASES])
def test_run_case(case: Case, ran: dict[str, Ran], spark: SparkSession) -> None:
    got = ran[case.name]
    if got.error is not None:
        raise got.error
    loaded, result = got.loaded, got.result
    assert loaded is not None and result is not None

    if case.outcome == "run_error":
        assert not result.ok, f"{case.name}: the run succeeded, expected {case.code}"
        codes = {result.error_code} | {_code_of(s) for s in result.steps}
        assert case.code in codes, f"{case.name}: expected {case.code}, got {result.error}"
    else:
        assert result.ok, f"{case.name}: {result.error_code} {result.error}"

    reasons = got.reasons
    for prefix in case.reasons:
        assert any(r.startswith(prefix) for r in reasons), (
            f"{case.name}: no quarantine reason starts with {prefix!r}: {sorted(reasons)}"
        )
    if case.outcome == "landed":
        assert not reasons, f"{case.name}: expected nothing quarantined, got {sorted(reasons)}"
    if case.outcome == "quarantined":
        assert reasons, f"{case.name}: nothing was quarantined"

    rejected = got.rejected
    for name in case.rejected:
        assert name in rejected, f"{case.name}: {name} not in lakeforge.rejected_files {rejected}"
    if case.outcome == "rejected_file":
        assert rejected, f"{case.name}: no file rejected"

    check_counts(case, result)
    if not case.multiline:
        check_line_counts(case, loaded, result, rejected)


def _code_of(step: StepResult) -> str | None:
    return step.error.split(" ", 1)[0] if step.error else None


def quarantine_reasons(spark: SparkSession, ran: dict[str, Ran]) -> dict[str, set[str]]:
    """Per case, every reason in the quarantines of its pipeline's silver tables (its run's
    rows); one query for all the cases."""
    from functools import reduce

    from pyspark.sql import functions as F

    from lakeforge.io.delta import table_exists

    reasons: dict[str, set[str]] = {name: set() for name in ran}
    frames = []
    for name, got in ran.items():
        if got.loaded is None or got.result is None:
            continue
        for silver in got.loaded.pipeline.silver:
            table = f"silver.{silver}__quarantine"
            if table_exists(spark, table):
                frames.append(
                    spark.table(table)
                    .where(F.col("_lf_run_id") == got.result.run_id)
                    .select(F.lit(name).alias("case"), F.explode("reasons").alias("r"))
                )
    if frames:
        for row in reduce(lambda a, b: a.unionAll(b), frames).distinct().collect():
            reasons[row["case"]].add(row["r"])
    return reasons


def rejected_files(spark: SparkSession, ran: dict[str, Ran]) -> dict[str, set[str]]:
    """Per case, the file names recorded in ``lakeforge.rejected_files`` for its bronze
    tables; one query for all the cases."""
    from pyspark.sql import functions as F

    from lakeforge.io.delta import table_exists

    rejected: dict[str, set[str]] = {name: set() for name in ran}
    case_of = {
        f"bronze.{bronze}": name
        for name, got in ran.items()
        if got.loaded is not None
        for bronze in got.loaded.pipeline.bronze
    }
    if not case_of or not table_exists(spark, "lakeforge.rejected_files"):
        return rejected
    rows = (
        spark.table("lakeforge.rejected_files")
        .where(F.col("table_name").isin(list(case_of)))
        .select("table_name", "path")
        .collect()
    )
    for r in rows:
        rejected[case_of[r["table_name"]]].add(str(r["path"]).rstrip("/").rsplit("/", 1)[-1])
    return rejected


def check_counts(case: Case, result: RunResult) -> None:
    """Per-step counts against case.yml (omitted keys are 0), and every step balanced."""
    for table, want in case.rows.items():
        unknown = set(want) - set(COUNT_KEYS)
        assert not unknown, f"{case.name}/case.yml: unknown count keys {unknown}"
        try:
            step = result.step(table)
        except KeyError:
            raise AssertionError(f"{case.name}: no step {table} in the run") from None
        got = {k: getattr(step, attr) for k, attr in COUNT_KEYS.items()}
        expected = {k: int(want.get(k, 0)) for k in COUNT_KEYS}
        assert got == expected, f"{case.name}: {table}: counts {got}, case.yml says {expected}"
    for step in result.steps:
        if step.status == "ok":
            assert step.balanced, f"{case.name}: {step.table} does not balance: {step}"


def check_line_counts(
    case: Case, loaded: LoadedPipeline, result: RunResult, rejected: set[str]
) -> None:
    """A count made outside Spark, for each CSV source: the data records of the files its
    path matches = its bronze step's rows in. Records are non-empty lines (less one header
    per file), or, for a source read with ``multiLine: true``, RFC 4180 records as Python's
    ``csv`` module reads them. Files in ``lakeforge.rejected_files`` (or that the case
    expects there) hold no bronze rows: every record is either counted in or in a rejected
    file."""
    for name, table in loaded.pipeline.bronze.items():
        source = table.source
        if source.format != "csv":
            continue
        try:
            step = result.step(f"bronze.{name}")
        except KeyError:
            continue
        if step.status != "ok":
            continue
        options = {k.lower(): str(v).lower() for k, v in source.options.items()}
        header = options.get("header", "true") == "true"
        multiline = options.get("multiline", "false") == "true"
        records = 0
        for path in raw_files(loaded.project_root, source.path):
            if path.name in rejected or path.name in case.rejected:
                continue
            records += count_records(path, header, multiline)
        assert step.rows_read == records, (
            f"{case.name}: bronze.{name} counted {step.rows_read} rows in, the raw files hold "
            f"{records} data records"
        )


def count_records(path: Path, header: bool, multiline: bool) -> int:
    """Data records of one CSV file (gzip-compressed when it ends in ``.gz``)."""
    import csv
    import gzip
    import io

    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if multiline:
        # Latin-1 maps every byte to one character: record boundaries are ASCII anyway.
        rows = [r for r in csv.reader(io.StringIO(data.decode("latin-1"), newline="")) if r]
        n = len([r for r in rows if any(f.strip() for f in r)])
    else:
        n = len([line for line in data.splitlines() if line.strip()])
    return max(0, n - (1 if header else 0))


def raw_files(root: Path, pattern: str) -> list[Path]:
    """The files a source path names: a file, every file under a folder, or a glob's
    matches (hidden names included: a source must read or report them)."""
    base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
    if base.is_file():
        return [base]
    if base.is_dir():
        return sorted(p for p in base.rglob("*") if p.is_file())
    matches = glob.glob(str(base), recursive=True, include_hidden=True)
    return sorted(Path(m) for m in matches if Path(m).is_file())


def test_raw_files_include_hidden_names(tmp_path: Path) -> None:
    """The outside-Spark count lists what a glob matches, ``_`` and ``.`` names included."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("id,v\n1,x\n\n2,y\n")
    (raw / "_b.csv").write_text("id,v\n3,z\n")
    (raw / ".d.csv").write_text("id,v\n4,w\n")
    (raw / "c.txt").write_text("not matched\n")
    files = raw_files(tmp_path, "raw/*.csv")
    assert [p.name for p in files] == [".d.csv", "_b.csv", "a.csv"]


def test_count_records_lines_and_multiline(tmp_path: Path) -> None:
    """Blank lines and one header per file are not records; a quoted newline is one record
    only when the source reads multiLine."""
    import gzip

    f = tmp_path / "a.csv"
    f.write_bytes(b'id,note\r\n1,"two\nlines"\r\n\r\n2,x\r\n')
    assert count_records(f, header=True, multiline=False) == 3
    assert count_records(f, header=True, multiline=True) == 2
    assert count_records(f, header=False, multiline=True) == 3
    z = tmp_path / "b.csv.gz"
    z.write_bytes(gzip.compress(b"id\n1\n2\n"))
    assert count_records(z, header=True, multiline=False) == 2


def test_about_is_one_line_of_prose() -> None:
    text = "about: a file with encoding: latin1 lands\nexpect: {outcome: landed}\n"
    spec = yaml.safe_load(_about_as_text(text))
    assert spec == {"about": "a file with encoding: latin1 lands", "expect": {"outcome": "landed"}}
    assert yaml.safe_load(_about_as_text('about: "quoted: kept"\n')) == {"about": "quoted: kept"}


def test_share_of_a_shared_run(tmp_path: Path) -> None:
    """A case's share of a run: its steps only; failed with the run's error when one of its
    steps failed, succeeded when the run failed after it, none when the run never reached it."""
    from lakeforge.results import StepResult

    case = next(c for c in RUN_CASES if c.name == "c10_empty_csv")
    plan = build_plan(load(case, as_project(case, tmp_path)))
    mine = [StepResult(table=t, kind="ingest", mode="append", status="ok") for t in plan.tables]
    other = StepResult(table="bronze.other", kind="ingest", mode="append", status="failed")
    run = RunResult(
        run_id="r1",
        pipeline="p",
        env="local",
        config_hash="h",
        status="failed",
        steps=[*mine, other],
        error="LF-RUN-003 other",
        error_code="LF-RUN-003",
    )
    ok = share(plan, run)
    assert ok is not None and ok.ok and ok.steps == mine and ok.error_code is None
    assert ok.run_id == "r1" and ok.pipeline == plan.pipeline

    mine[-1].status = "failed"
    failed = share(plan, RunResult(**{**run.__dict__, "steps": [*mine, other]}))
    assert failed is not None and not failed.ok and failed.error_code == "LF-RUN-003"

    skipped = [
        StepResult(table=t, kind="ingest", mode="append", status="skipped") for t in plan.tables
    ]
    assert share(plan, RunResult(**{**run.__dict__, "steps": [other, *skipped]})) is None
