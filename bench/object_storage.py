"""Benchmark: lakeforge's bronze and silver steps on an S3 server against local disk.

What is measured
    TPC-H ``lineitem`` (scale factor 0.5 by default: about 3M rows, ~380 MB of CSV in 4
    files, plus ``bench/lineitem.py``'s small file of anomalies) goes through lakeforge's
    ``bronze.lineitem`` ingest and ``silver.lineitem`` conform steps (the job
    ``bench/lineitem.py`` generates, run the same way through lakeforge's Python API),
    twice per repetition:

    * ``local``: raw CSV files on local disk, warehouse (every Delta table: bronze, silver,
      quarantine and lakeforge's system tables) on local disk;
    * ``s3``: raw CSV files read from ``s3a://raw/lineitem/``, warehouse at
      ``s3a://lake/rep<N>/warehouse``, on a real S3 server: SeaweedFS (``weed server``,
      started by ``tests/s3server.py``) on 127.0.0.1, reached through Hadoop's S3A
      connector with the settings lakeforge derives from a profile's ``s3:`` section.

    Wall-clock seconds of bronze, silver and their total are reported per repetition and
    side, with medians, MB/s (input CSV MB / median seconds: a normalised rate for every
    step, not the bytes each step moves; silver reads bronze, not the CSV) and the ratio
    s3 / local of the medians. Next to them, the CPU seconds the timed run used (Spark's
    driver JVM and this Python from ``/proc``, and SeaweedFS's process, which shares the
    2 cores): on a shared machine they move much less than wall time when others load it.

    Bronze runs from the start of ``load_pipeline`` to the end of the bronze step (config,
    planning, schemas, system tables, listing, on S3 the per-file HEAD for object versions
    and the writer lease lakeforge takes in an s3a:// warehouse), silver from there to the
    end of the silver step, total until ``execute`` returns (``bench/lineitem.py``'s
    ``run_lakeforge``).

    Before the pipelines, the CSV files are landed once into the versioned raw bucket with
    lakeforge's own ``land`` (``lakeforge.io.landing``: local MD5 and sha256 of each
    file, boto3 upload in 64 MB parts, a HEAD, ETag check); its MB/s is reported too. It
    is lakeforge land's end-to-end rate, checksums included, measured once.

How the two sides are run, and why it is fair
    A session has one warehouse, and lakeforge's jobs write to the schemas ``bronze``,
    ``silver`` and ``lakeforge``, so the two sides cannot share a JVM the way
    ``bench/lineitem.py``'s sides do. Each side of each repetition therefore runs in a
    fresh process of its own (this script again, ``--side local|s3``), with its own
    scratch project whose profile differs only in ``warehouse``, ``allowed_roots`` and the
    source path: the same ``local[2]`` Spark conf as ``bench/lineitem.py``, the same jar
    bundles (delta, avro, s3) and ``s3:`` settings on both sides, so the classpath and the
    JVM are the same; each has its own embedded Derby metastore on local disk (as
    ``conf/s3.yml``). The parent process generates the data, starts and stops the server,
    lands the files and aggregates.

    * Each process first runs the same job once, untimed, over one TPC-H file and the
      anomalies, into tables of their own (``bronze.lineitem_warmup``,
      ``silver.lineitem_warmup``): JIT, class loading, Derby, schemas and lakeforge's
      system tables, S3A's connections. The measured tables then start empty with no reset
      (the ingestion log is kept per table; the system tables hold the warm-up's rows, as
      in any project after its first run). The JVM collects garbage, then the timed job
      runs over every file. A fresh process per run is also how a scheduler runs lakeforge.
    * The order alternates per repetition (odd: local first). The other side's process
      has exited before a side starts; the server idles meanwhile.
    * Both sides read the same bytes (the landed objects are checked by ETag against the
      local files) and must land the same rows: each process checks its bronze, silver and
      quarantine counts against the counts known from the input files (and against what
      lakeforge reported), that every table lies where its side says (``file:`` or
      ``s3a://lake/``) and that bronze's rows name only files of its side's raw zone; the
      parent checks that both sides' counts are identical in every repetition. Any
      difference fails the run before results are written.

What it does not measure
    * A network. SeaweedFS runs on loopback on the same machine: no latency, no bandwidth
      limit, no throttling, and each request's cost is paid in CPU on the same 2 cores
      Spark uses (the server's own work included). So the ratio measures what S3A and the
      S3 protocol cost over local files (HTTP requests, multipart uploads, listings
      without directories, Delta's log on an object store, the server's CPU), not what a
      remote object store over a WAN or AWS would cost.
    * Cold storage. Both sides read data that was just written: from the page cache, for
      the local files and for SeaweedFS's volume files alike.
    * Tuning. S3A runs with Hadoop's defaults and what lakeforge sets (endpoint, region,
      path style, credential provider, fail-fast retries); the warehouse bucket is not
      versioned, the raw bucket is.
    * JVM start and the warm-up pass are not in the figures; the processes' wall times are
      reported apart, for reference. In a fresh JVM after one warm-up pass, the JIT is
      still compiling: that cost is in both sides' figures alike.

Run from the repository root (generated data is cached under ``--work``)::

    .venv/bin/python bench/object_storage.py                     # scale 0.5, 3 reps
    .venv/bin/python bench/object_storage.py --scale 0.05 --reps 1 --results /tmp/r.md

Results are appended to ``--results`` (default ``bench/RESULTS.md``) under a heading with
the date and the exact command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineitem as li

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from tests.s3server import S3Server

REPO = li.REPO
LOCAL, S3 = "local", "s3"
SIDES = (LOCAL, S3)
RAW_BUCKET, LAKE_BUCKET = "raw", "lake"
RAW_PREFIX = "lineitem/"
JAR_BUNDLES = ["delta", "avro", "s3"]
REGION = "us-east-1"
TABLES = (li.LF_BRONZE, li.LF_SILVER, li.LF_QUARANTINE)
WARMUP = "lineitem_warmup"
WARMUP_TABLES = (f"bronze.{WARMUP}", f"silver.{WARMUP}", f"silver.{WARMUP}__quarantine")
SMOKE_SCALE = 0.5


# ---------------------------------------------------------------------------------------
# One side, in its own process (``--side local|s3 --spec FILE``)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SideSpec:
    """What the parent tells a side's process: where things are and what it must land."""

    side: str
    rep: int
    project: str  # scratch project folder (local disk)
    warehouse: str  # relative to the project (local) or an s3a:// URI
    table_prefix: str  # where every table must lie: file:<warehouse> or s3a://lake/...
    source: str  # glob of every input file
    warmup_source: str  # one TPC-H file and the anomalies
    raw_root: str  # the side's raw zone, an allowed root
    source_prefix: str  # what every bronze row's _lf_source_file starts with
    endpoint: str
    server_pid: int  # SeaweedFS, for its CPU time during the timed run
    declare_dedup: bool
    expected: dict[str, int]
    expected_warmup: dict[str, int]
    out: str  # where the process writes its result (JSON)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
    path.write_text("# Generated by bench/object_storage.py on every run.\n" + text)


def warmup_pipeline(spec: SideSpec) -> dict[str, Any]:
    """``bench/lineitem.py``'s job over the warm-up files, into ``*.lineitem_warmup``: the
    measured tables start empty without a reset (the ingestion log is kept per table)."""
    job = li.pipeline_yaml("lineitem_warmup", spec.warmup_source, spec.declare_dedup)
    job["bronze"] = {WARMUP: job["bronze"]["lineitem"]}
    job["silver"] = {WARMUP: {**job["silver"]["lineitem"], "from": f"bronze.{WARMUP}"}}
    return job


def write_side_project(spec: SideSpec) -> li.Project:
    """The scratch project: ``bench/lineitem.py``'s profile and job, on this side's storage."""
    root = Path(spec.project)
    profile = li.profile_yaml(spec.source)
    profile.update(
        {
            "allowed_roots": [spec.raw_root],
            "description": f"lakeforge benchmark (bench/object_storage.py), side {spec.side}",
            "warehouse": spec.warehouse,
            "jar_bundles": list(JAR_BUNDLES),
            "s3": {"endpoint": spec.endpoint, "region": REGION, "path_style": True},
        }
    )
    write_yaml(root / "conf" / "local.yml", profile)
    pipeline = root / "jobs" / "lineitem" / "pipeline.yml"
    warmup = root / "jobs" / "lineitem_warmup" / "pipeline.yml"
    write_yaml(pipeline, li.pipeline_yaml("lineitem", spec.source, spec.declare_dedup))
    write_yaml(warmup, warmup_pipeline(spec))
    return li.Project(root=root, pipeline=pipeline, warmup=warmup)


def counts_of(spark: SparkSession, tables: tuple[str, str, str]) -> dict[str, int]:
    b, s, q = (li.scalar(spark.sql(f"SELECT count(*) FROM {t}")) for t in tables)
    return asdict(li.Counts(bronze=b, silver=s, quarantine=q, duplicates=b - s - q))


def check_counts(what: str, counts: dict[str, int], expected: dict[str, int]) -> None:
    if counts != expected:
        raise li.BenchError(f"{what}: tables hold {counts}, expected {expected}")


def run_warmup(spark: SparkSession, project: li.Project, spec: SideSpec) -> float:
    """The warm-up job, untimed for the report; its counts checked. Returns its seconds."""
    from lakeforge.pipeline.executor import execute
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline

    t0 = time.perf_counter()
    loaded = load_pipeline(project.warmup)
    result = execute(build_plan(loaded), spark, loaded.project_root, run_id=li.new_run_id("warm"))
    seconds = time.perf_counter() - t0
    if not result.ok:
        raise li.BenchError(f"{spec.side} warm-up failed: {result.error}")
    counts = counts_of(spark, WARMUP_TABLES)
    check_counts(f"{spec.side} warm-up", counts, spec.expected_warmup)
    return seconds


def table_details(spark: SparkSession) -> dict[str, dict[str, Any]]:
    """Location, bytes and files of each measured table, from Delta's log (no data read)."""
    out = {}
    for table in TABLES:
        row = spark.sql(f"DESCRIBE DETAIL {table}").head()
        if row is None:
            raise li.BenchError(f"no detail for {table}")
        out[table] = {
            "location": str(row["location"]),
            "bytes": int(row["sizeInBytes"]),
            "files": int(row["numFiles"]),
        }
    return out


def check_locations(spark: SparkSession, spec: SideSpec, details: dict[str, Any]) -> None:
    """Every table (system tables too) lies in this side's warehouse; bronze's rows came
    from this side's raw zone only."""
    locations = {t: d["location"] for t, d in details.items()}
    for table in spark.catalog.listTables(li.SYSTEM_SCHEMA):
        if table.tableType != "VIEW":
            name = f"{li.SYSTEM_SCHEMA}.{table.name}"
            row = spark.sql(f"DESCRIBE DETAIL {name}").head()
            locations[name] = str(row["location"]) if row is not None else "?"
    wrong = {t: loc for t, loc in locations.items() if not loc.startswith(spec.table_prefix)}
    if wrong:
        raise li.BenchError(f"{spec.side}: tables outside {spec.table_prefix}: {wrong}")
    sources = [
        str(r[0])
        for r in spark.sql(f"SELECT DISTINCT {li.SOURCE_FILE} FROM {li.LF_BRONZE}").collect()
    ]
    foreign = [s for s in sources if not s.startswith(spec.source_prefix)]
    if foreign or not sources:
        raise li.BenchError(
            f"{spec.side}: bronze rows from outside {spec.source_prefix}: {foreign}"
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(jvm_pid: int, server_pid: int) -> dict[str, float]:
    """CPU seconds so far of this side's processes: Spark's JVM, this Python, the server."""
    return {
        "jvm": cpu_seconds(jvm_pid),
        "python": cpu_seconds(os.getpid()),
        "server": cpu_seconds(server_pid),
    }


def side_main(spec_path: Path) -> int:
    """Warm up, run the measured job once, check it, write the result as JSON."""
    import lakeforge
    from lakeforge.plan.load import load_pipeline
    from lakeforge.runtime.session import build_session

    spec = SideSpec(**json.loads(spec_path.read_text()))
    out = Path(spec.out)
    try:
        project = write_side_project(spec)
        li.check_config(project.pipeline)
        li.check_config(project.warmup)
        loaded = load_pipeline(project.pipeline)
        spark = build_session(
            loaded.profile, loaded.project_root, f"lakeforge-bench-object-storage-{spec.side}"
        )
        try:
            # pyspark started the JVM itself (spark-submit execs java): its pid.
            jvm_pid = int(spark.sparkContext._gateway.proc.pid)  # type: ignore[union-attr]
            warmup_s = run_warmup(spark, project, spec)
            li.jvm_gc(spark)
            load_before = os.getloadavg()[0]
            cpu0 = cpu_now(jvm_pid, spec.server_pid)
            run = li.run_lakeforge(spark, project.pipeline, f"rep{spec.rep}")
            cpu1 = cpu_now(jvm_pid, spec.server_pid)
            tables = li.table_counts(spark, li.LAKEFORGE)
            check_counts(f"{spec.side} rep {spec.rep}", asdict(tables), spec.expected)
            if run.reported != tables:
                raise li.BenchError(
                    f"{spec.side}: lakeforge reported {run.reported}, its tables hold {tables}"
                )
            details = table_details(spark)
            check_locations(spark, spec, details)
        finally:
            spark.stop()
        result: dict[str, Any] = {
            "timing": asdict(run.timing),
            "counts": asdict(tables),
            "jobs": run.jobs,
            "tables": details,
            "cpu": {k: cpu1[k] - cpu0[k] for k in cpu0},
            "warmup_seconds": warmup_s,
            "load_before": load_before,
            "lakeforge": str(Path(lakeforge.__file__).resolve().parent),
        }
    except li.BenchError as exc:
        result = {"error": str(exc)}
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if "error" not in result else 1


# ---------------------------------------------------------------------------------------
# The parent: data, server, landing, the repetitions, the report
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landing:
    files: int
    bytes: int
    parts: int
    seconds: float

    @property
    def mb_s(self) -> float:
        return self.bytes / 1e6 / self.seconds


@dataclass
class SideResult:
    timing: li.Timing
    counts: li.Counts
    jobs: dict[str, int]
    tables: dict[str, dict[str, Any]]
    cpu: dict[str, float]  # CPU seconds during the timed run: jvm, python, server
    warmup_seconds: float
    load_before: float
    process_seconds: float

    @property
    def cpu_spark(self) -> float:
        return self.cpu["jvm"] + self.cpu["python"]


@dataclass
class Rep:
    number: int
    first: str
    runs: dict[str, SideResult] = field(default_factory=dict)


def land_raw(server: S3Server, data: li.Dataset) -> Landing:
    """The CSV files into ``s3://raw/lineitem/`` with lakeforge's own landing, timed."""
    from lakeforge.config.models import S3Settings
    from lakeforge.errors import LakeforgeError
    from lakeforge.io.landing import land
    from lakeforge.io.s3 import client

    settings = S3Settings(endpoint=server.endpoint, region=REGION, path_style=True)
    s3 = client(settings)
    t0 = time.perf_counter()
    try:
        landed = land(s3, settings, data.folder, f"s3://{RAW_BUCKET}/{RAW_PREFIX}")
    except LakeforgeError as exc:
        raise li.BenchError(f"land failed: {exc}") from None
    seconds = time.perf_counter() - t0
    local = sorted(p.name for p in data.folder.glob("lineitem.*.csv"))
    names = sorted(x.local.name for x in landed)
    if names != local:
        raise li.BenchError(f"landed {names}, the input is {local}")
    return Landing(
        files=len(landed),
        bytes=sum(x.version.size for x in landed),
        parts=sum(x.parts for x in landed),
        seconds=seconds,
    )


def run_side(
    base: Path, side: str, rep: int, data: li.Dataset, server: S3Server, declare: bool
) -> SideResult:
    """One side of one repetition in a fresh process."""
    warmup_names = Path(data.warmup_glob).name
    if side == LOCAL:
        raw_root = str(data.folder) + "/"
        source_prefix = f"file:{raw_root}"
        source, warmup_source = data.glob, data.warmup_glob
        warehouse = "lakehouse/warehouse"
        table_prefix = f"file:{base / 'runs' / f'{side}-rep{rep}' / warehouse}/"
    else:
        raw_root = source_prefix = f"s3a://{RAW_BUCKET}/{RAW_PREFIX}"
        source = raw_root + Path(data.glob).name
        warmup_source = raw_root + warmup_names
        warehouse = f"s3a://{LAKE_BUCKET}/rep{rep}/warehouse"
        table_prefix = warehouse + "/"
    full = li.expected_counts(data, sum(data.tpch_rows.values()), dedup=True)
    first_rows = data.tpch_rows[data.tpch_files[0].name]
    spec = SideSpec(
        side=side,
        rep=rep,
        project=str(base / "runs" / f"{side}-rep{rep}"),
        warehouse=warehouse,
        table_prefix=table_prefix,
        source=source,
        warmup_source=warmup_source,
        raw_root=raw_root,
        source_prefix=source_prefix,
        endpoint=server.endpoint,
        server_pid=server.proc.pid if server.proc is not None else 0,
        declare_dedup=declare,
        expected=asdict(full),
        expected_warmup=asdict(li.expected_counts(data, first_rows, dedup=True)),
        out=str(base / "runs" / f"{side}-rep{rep}.json"),
    )
    spec_path = base / "runs" / f"{side}-rep{rep}.spec.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(asdict(spec), indent=2) + "\n")
    env = dict(os.environ)
    env.pop("LAKEFORGE_ENV", None)
    li.log(f"rep {rep} {side}: fresh process (warm-up, then the timed run)")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--side", side, "--spec", str(spec_path)],
        cwd=REPO,
        env=env,
        check=False,
    )
    process_seconds = time.perf_counter() - t0
    out = Path(spec.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    if proc.returncode != 0 or "error" in result:
        raise li.BenchError(
            f"rep {rep} {side}: exit {proc.returncode}: {result.get('error', '(no result)')}"
        )
    if result["lakeforge"] != str((base / "src" / "lakeforge").resolve()):
        raise li.BenchError(f"rep {rep} {side} imported lakeforge from {result['lakeforge']}")
    r = SideResult(
        timing=li.Timing(**result["timing"]),
        counts=li.Counts(**result["counts"]),
        jobs=result["jobs"],
        tables=result["tables"],
        cpu=result["cpu"],
        warmup_seconds=result["warmup_seconds"],
        load_before=result["load_before"],
        process_seconds=process_seconds,
    )
    t = r.timing
    li.log(
        f"rep {rep} {side}: bronze {t.bronze:.2f}s, silver {t.silver:.2f}s, "
        f"total {t.total:.2f}s; CPU {r.cpu_spark:.1f}s Spark + {r.cpu['server']:.1f}s server "
        f"(warm-up {r.warmup_seconds:.1f}s, process {process_seconds:.0f}s)"
    )
    return r


def verify_rep(rep: Rep) -> None:
    a, b = rep.runs[LOCAL].counts, rep.runs[S3].counts
    if a != b:
        raise li.BenchError(f"rep {rep.number}: local landed {a}, s3 landed {b}")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {li.loadavg()}"


def weed_version() -> str:
    from tests import s3server

    try:
        out = subprocess.run(
            [s3server.weed_binary(), "version"], capture_output=True, text=True, check=False
        ).stdout
    except (OSError, RuntimeError):
        return "unknown"
    return out.strip().splitlines()[0].removeprefix("version ").strip() if out.strip() else "?"


def bundle_artifacts(project: li.Project, bundle: str, prefix: str) -> str:
    from lakeforge.plan.load import load_pipeline
    from lakeforge.runtime.session import jars_dir_for

    loaded = load_pipeline(project.pipeline)
    manifest = jars_dir_for(loaded.profile, loaded.project_root) / bundle / "MANIFEST.json"
    try:
        artifacts = json.loads(manifest.read_text())["artifacts"]
    except (OSError, ValueError, KeyError):
        return f"unknown (no {manifest})"
    return ", ".join(str(a) for a in artifacts if str(a).startswith(prefix)) or "?"


@dataclass(frozen=True)
class Context:
    args: argparse.Namespace
    data: li.Dataset
    landing: Landing
    facts: dict[str, str]
    dedup_note: str
    started: str
    load_start: str
    uptime_start: str
    uptime_end: str
    wall_seconds: float


def fmt_ratio(s3: float, local: float) -> str:
    return f"{s3 / local:.2f}" if local > 0 else "n/a"


def render(reps: list[Rep], ctx: Context) -> str:
    med: dict[str, li.Timing] = {}
    for side in SIDES:
        runs = [r.runs[side].timing for r in reps]
        med[side] = li.Timing(
            bronze=statistics.median(t.bronze for t in runs),
            silver=statistics.median(t.silver for t in runs),
            total=statistics.median(t.total for t in runs),
        )
    loc, s3 = med[LOCAL], med[S3]
    data, args, landing = ctx.data, ctx.args, ctx.landing
    mb = data.bytes / 1e6
    input_mb = sum(f.stat().st_size for f in data.folder.glob("lineitem.*.csv")) / 1e6
    counts = reps[-1].runs[LOCAL].counts
    lines = [f"## {ctx.started} — `{li.display_command()}`", ""]
    if args.reps < 3 or args.scale < SMOKE_SCALE:
        lines += [
            f"> Smoke test only (scale < {SMOKE_SCALE:g} or fewer than 3 repetitions): not a "
            "measurement.",
            "",
        ]
    lines += [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {li.cpu_model()}, "
        f"memory {li.meminfo_total()}; load average {ctx.load_start} at start, "
        f"{li.loadavg()} at end; `uptime` at start: `{ctx.uptime_start}`; at end: "
        f"`{ctx.uptime_end}`",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in ctx.facts.items()),
        f"- data: TPC-H lineitem scale {data.scale:g}, {len(data.tpch_files)} CSV files, "
        f"{sum(data.tpch_rows.values()):,} rows, {mb:,.1f} MB ({data.tool_version}); plus "
        f"{li.ANOMALIES_FILE}: {data.duplicates:,} duplicate keys, {data.invalid} invalid "
        f"rows; input {input_mb:,.1f} MB in all (the MB in MB/s below)",
        "- server: SeaweedFS `weed server` (tests/s3server.py) on 127.0.0.1, http, path "
        f"style; raw bucket `{RAW_BUCKET}` versioned, warehouse bucket `{LAKE_BUCKET}` not; "
        "Derby metastore on local disk on both sides",
        f"- landing (`lakeforge.io.landing.land`, once, before the pipelines): "
        f"{landing.files} files, {landing.bytes / 1e6:,.1f} MB ({landing.parts} multipart "
        f"parts) in {landing.seconds:.2f} s = **{landing.mb_s:,.1f} MB/s** (local MD5 + "
        "sha256, upload, HEAD and ETag check per file)",
        f"- mode: dedup {ctx.dedup_note}; Spark {li.MASTER}, "
        + ", ".join(f"{k}={v}" for k, v in li.SPARK_CONF.items())
        + f", jar bundles {', '.join(JAR_BUNDLES)} on both sides; each side of each rep in a "
        "fresh process with one untimed warm-up (one TPC-H file and the anomalies); order "
        "alternates (odd reps: local first)",
        f"- rows, as expected and identical on both sides in every rep: bronze "
        f"{counts.bronze:,}, silver {counts.silver:,}, quarantine {counts.quarantine:,}, "
        f"duplicates removed {counts.duplicates:,}; every table of the s3 side (system "
        "tables too) under `s3a://lake/`, every bronze row from `s3a://raw/lineitem/`",
        f"- whole invocation: {ctx.wall_seconds / 60:.1f} min wall clock",
        "",
        "Seconds (wall clock); load = 1-minute load average just before the timed run:",
        "",
        "| rep | first | local bronze | local silver | local total | s3 bronze | s3 silver "
        "| s3 total | ratio total | load local / s3 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reps:
        a, b = r.runs[LOCAL].timing, r.runs[S3].timing
        lines.append(
            f"| {r.number} | {r.first} | {a.bronze:.2f} | {a.silver:.2f} | {a.total:.2f} "
            f"| {b.bronze:.2f} | {b.silver:.2f} | {b.total:.2f} | {fmt_ratio(b.total, a.total)} "
            f"| {r.runs[LOCAL].load_before:.2f} / {r.runs[S3].load_before:.2f} |"
        )
    lines += [
        f"| **median** | | **{loc.bronze:.2f}** | **{loc.silver:.2f}** | **{loc.total:.2f}** "
        f"| **{s3.bronze:.2f}** | **{s3.silver:.2f}** | **{s3.total:.2f}** "
        f"| **{fmt_ratio(s3.total, loc.total)}** | |",
        "",
        f"Of the medians (MB/s = {input_mb:,.1f} MB of input CSV / median seconds):",
        "",
        "| | bronze | silver | total |",
        "|---|---:|---:|---:|",
        f"| local, median s | {loc.bronze:.2f} | {loc.silver:.2f} | {loc.total:.2f} |",
        f"| local, MB/s | {input_mb / loc.bronze:.1f} | {input_mb / loc.silver:.1f} "
        f"| {input_mb / loc.total:.1f} |",
        f"| s3, median s | {s3.bronze:.2f} | {s3.silver:.2f} | {s3.total:.2f} |",
        f"| s3, MB/s | {input_mb / s3.bronze:.1f} | {input_mb / s3.silver:.1f} "
        f"| {input_mb / s3.total:.1f} |",
        f"| **ratio s3 / local** | **{fmt_ratio(s3.bronze, loc.bronze)}** "
        f"| **{fmt_ratio(s3.silver, loc.silver)}** | **{fmt_ratio(s3.total, loc.total)}** |",
        "",
    ]
    cpu = {
        side: (
            statistics.median(r.runs[side].cpu_spark for r in reps),
            statistics.median(r.runs[side].cpu["server"] for r in reps),
            statistics.median(r.runs[side].cpu_spark + r.runs[side].cpu["server"] for r in reps),
        )
        for side in SIDES
    }
    lines += [
        "CPU seconds used during the timed run (medians; Spark = its driver JVM, which runs "
        "the `local[2]` tasks, plus this Python; server = SeaweedFS, idle on the local "
        "side). Less sensitive than wall time to other work on the machine:",
        "",
        "| | Spark | server | Spark + server |",
        "|---|---:|---:|---:|",
        *(
            f"| {side} | {cpu[side][0]:.1f} | {cpu[side][1]:.1f} | {cpu[side][2]:.1f} |"
            for side in SIDES
        ),
        f"| **ratio s3 / local** | **{fmt_ratio(cpu[S3][0], cpu[LOCAL][0])}** | "
        f"| **{fmt_ratio(cpu[S3][2], cpu[LOCAL][2])}** |",
        "",
        "Per rep, CPU s Spark + server: "
        + "; ".join(
            f"rep {r.number} local {r.runs[LOCAL].cpu_spark:.1f} + "
            f"{r.runs[LOCAL].cpu['server']:.1f}, s3 {r.runs[S3].cpu_spark:.1f} + "
            f"{r.runs[S3].cpu['server']:.1f}"
            for r in reps
        )
        + ".",
        "",
    ]
    last = reps[-1]
    sizes = []
    for table in TABLES:
        d = last.runs[S3].tables[table]
        e = last.runs[LOCAL].tables[table]
        sizes.append(
            f"{table} {d['bytes'] / 1e6:,.1f} MB in {d['files']} files on s3 "
            f"({e['bytes'] / 1e6:,.1f} MB, {e['files']} files local)"
        )
    lines += [
        "Delta tables written (last rep): " + "; ".join(sizes) + ".",
        "",
        "Spark jobs per step (last rep): "
        + "; ".join(
            f"{side} " + ", ".join(f"{k} {v}" for k, v in last.runs[side].jobs.items())
            for side in SIDES
        )
        + ". Process wall time per rep (JVM start, warm-up, timed run, checks): "
        + "; ".join(
            f"rep {r.number} local {r.runs[LOCAL].process_seconds:.0f} s, "
            f"s3 {r.runs[S3].process_seconds:.0f} s"
            for r in reps
        )
        + ".",
        "",
        "SeaweedFS runs on loopback on the same 2 CPUs: no network latency or bandwidth "
        "limit, and the server's CPU competes with Spark's. The ratio is what S3A and the "
        "S3 protocol cost over local files on one machine, not a remote object store.",
        "",
    ]
    return "\n".join(lines) + "\n"


def source_revision() -> str:
    """The checkout's commit and whether its src/ has changes (read-only git calls)."""
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (git unavailable)"
    return head + (" + uncommitted changes in src/" if dirty else " (src/ clean)")


def snapshot_lakeforge(base: Path) -> tuple[Path, str]:
    """Copy ``src/lakeforge`` under ``base``: every process of the run imports that copy,
    so edits made to the checkout while a long run goes on cannot split it. Returns the
    copy's ``src`` folder and a digest of its files."""
    target = base / "src"
    shutil.copytree(
        REPO / "src" / "lakeforge",
        target / "lakeforge",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    digest = hashlib.sha256()
    for path in sorted(p for p in (target / "lakeforge").rglob("*") if p.is_file()):
        digest.update(path.relative_to(target).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return target, digest.hexdigest()[:12]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/object_storage.py",
        description="Time lakeforge's bronze + silver steps on TPC-H lineitem with files and "
        "tables on a local S3 server (SeaweedFS) against local disk, alternating.",
    )
    p.add_argument(
        "--scale", type=float, default=0.5, help="TPC-H scale factor (default 0.5, ~380 MB)"
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions (default 3; 3+ to judge)")
    p.add_argument(
        "--work",
        type=Path,
        default=REPO / "bench" / "work",
        help="generated data, scratch projects, server data (default bench/work, git-ignored)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=REPO / "bench" / "RESULTS.md",
        help="markdown file the results are appended to (default bench/RESULTS.md)",
    )
    # One side of one repetition, in its own process: started by the parent, not by hand.
    p.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side and not args.spec:
        p.error("--side needs --spec")
    if args.scale <= 0:
        p.error("--scale must be positive")
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def set_credentials(access_key: str, secret_key: str) -> None:
    """The server's keys, for boto3 here and for the sides' JVMs (S3A reads them from the
    environment the JVM starts with; nothing goes into a Spark setting)."""
    os.environ["AWS_ACCESS_KEY_ID"] = access_key
    os.environ["AWS_SECRET_ACCESS_KEY"] = secret_key
    os.environ["AWS_REGION"] = REGION
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.side:
        return side_main(args.spec)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests import s3server

    t_start = time.perf_counter()
    started, load_start, uptime_start = li.now_utc(), li.loadavg(), uptime()
    work: Path = args.work.resolve()
    base = work / "object-storage"
    shutil.rmtree(base, ignore_errors=True)
    revision = source_revision()
    snapshot, digest = snapshot_lakeforge(base)
    # This process and every side's process import lakeforge from the copy.
    sys.path.insert(0, str(snapshot))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(snapshot), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    os.environ.setdefault("LAKEFORGE_JARS_DIR", str(REPO / ".lakeforge" / "jars"))
    declare = li.lakeforge_declares_dedup()
    dedup_note = (
        "on (lakeforge: `dedup: {order_by: [_lf_ingested_at desc]}`)"
        if declare
        else "on (lakeforge: one row per `keys`)"
    )
    try:
        data = li.generate_lineitem(work, args.scale)
        li.log(
            f"{data.rows:,} rows in {len(data.tpch_files) + 1} files, {data.bytes / 1e6:,.1f} MB"
        )
        access_key, secret_key = "lfbench" + secrets.token_hex(6), secrets.token_urlsafe(24)
        set_credentials(access_key, secret_key)
        li.log("starting SeaweedFS")
        server = s3server.start(
            base / "s3server",
            buckets=(RAW_BUCKET,),
            access_key=access_key,
            secret_key=secret_key,
            region=REGION,
        )
        try:
            server.create_bucket(LAKE_BUCKET, versioned=False)
            li.log(f"SeaweedFS at {server.endpoint}; landing {data.folder} into s3://raw/")
            landing = land_raw(server, data)
            li.log(f"landed {landing.bytes / 1e6:,.1f} MB in {landing.seconds:.2f}s")
            reps: list[Rep] = []
            for number in range(1, args.reps + 1):
                order = (LOCAL, S3) if number % 2 == 1 else (S3, LOCAL)
                rep = Rep(number=number, first=order[0])
                for side in order:
                    rep.runs[side] = run_side(base, side, number, data, server, declare)
                verify_rep(rep)
                reps.append(rep)
            local_project = rep1_local_project(base)
            facts = li.versions(local_project)
            facts["lakeforge"] = (
                f"{facts['lakeforge'].split(' @ ')[0]} @ {revision}, run from a copy of src/ "
                f"taken at start (files sha256 {digest})"
            )
            facts["S3A"] = bundle_artifacts(local_project, "s3", "org.apache.hadoop:")
            facts["AWS SDK"] = bundle_artifacts(local_project, "s3", "software.amazon.awssdk:s3:")
            facts["SeaweedFS"] = weed_version()
        finally:
            server.stop()
            shutil.rmtree(base / "s3server", ignore_errors=True)
    except li.BenchError as exc:
        li.log(f"FAILED: {exc} (scratch projects kept in {base / 'runs'})")
        return 1
    ctx = Context(
        args=args,
        data=data,
        landing=landing,
        facts=facts,
        dedup_note=dedup_note,
        started=started,
        load_start=load_start,
        uptime_start=uptime_start,
        uptime_end=uptime(),
        wall_seconds=time.perf_counter() - t_start,
    )
    section = render(reps, ctx)
    shutil.rmtree(base, ignore_errors=True)
    li.append_results(args.results, section)
    print(section)
    li.log(f"appended to {args.results}")
    return 0


def rep1_local_project(base: Path) -> li.Project:
    """Rep 1's local project, as written by its process (for versions and jar manifests)."""
    root = base / "runs" / f"{LOCAL}-rep1"
    return li.Project(
        root=root,
        pipeline=root / "jobs" / "lineitem" / "pipeline.yml",
        warmup=root / "jobs" / "lineitem_warmup" / "pipeline.yml",
    )


if __name__ == "__main__":
    sys.exit(main())
