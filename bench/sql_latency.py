"""How long ``lakeforge sql`` takes as a user feels it: the fast engine (delta-rs +
DataFusion, no JVM) against the Spark engine, on a small gold table and a large table.

Setup (untimed, once): a project with the warm-up's small pipeline (lakeforge.cli.warmup:
its ``gold.customer_value`` has a few rows) and bench/lineitem.py's TPC-H lineitem job at
``--scale`` (``silver.lineitem``: 3.0 M rows at scale 0.5), both run by ``lakeforge run``.

Measured, per repetition, each a fresh ``lakeforge sql`` process (JVM start, class archive
as ``./dev setup`` makes it, Derby metastore for Spark; nothing of the kind for the fast
engine), engines alternating which goes first:

- small: ``SELECT count(*) ... FROM gold.customer_value``
- large: ``SELECT l_returnflag, count(*), sum(l_quantity), max(l_shipdate) FROM
  silver.lineitem GROUP BY l_returnflag ORDER BY l_returnflag``

Both engines' answers are compared in every repetition. Then, in one process each,
first and warm (second) in-process latency of the large query through
``lakeforge.sql.engine.answer``: what a notebook or a service that keeps its session pays.

Last, the JDBC round trip: ``lakeforge serve`` (Spark's Thrift server, same profile) and
pyspark's beeline as the client: a fresh beeline process per query (client JVM start,
connect, query), and the server-side time beeline reports for the large query run
``--reps + 2`` times over one connection (the first is the server's first query).

    .venv/bin/python bench/sql_latency.py                 # scale 0.5, 3 reps
    .venv/bin/python bench/sql_latency.py --scale 0.05 --reps 1 --results /tmp/r.md  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineitem as li

from lakeforge.cli.warmup import DELIVERIES, HEADER, PIPELINE

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
ENGINES = ("fast", "spark")
QUERIES = {
    "small": "SELECT count(*) AS n, count(DISTINCT customer_id) AS customers "
    "FROM gold.customer_value",
    "large": "SELECT l_returnflag, count(*) AS n, sum(l_quantity) AS qty, "
    "max(l_shipdate) AS last_ship FROM silver.lineitem GROUP BY l_returnflag "
    "ORDER BY l_returnflag",
}

# In one process: the first and the second answer of the large query per engine.
IN_PROCESS = r"""
import json, sys, time
from pathlib import Path
from lakeforge.config.loader import load_profile
from lakeforge.sql.engine import Engine, answer
from lakeforge.sql.fast import Rows

engine, query = Engine(sys.argv[1]), sys.argv[2]
profile, _ = load_profile("local", Path.cwd())
session = {}

def spark_rows(q, n):
    from lakeforge.runtime.session import build_session
    from lakeforge.cli.output import collect_printable
    if "s" not in session:
        session["s"] = build_session(profile, Path.cwd(), "bench:sql")
    df = session["s"].sql(q)
    return Rows(list(df.columns), collect_printable(df, n))

times = []
for _ in range(2):
    t0 = time.monotonic()
    got = answer(query, engine, profile, Path.cwd(), 1000, spark_rows)
    times.append(time.monotonic() - t0)
    assert got.engine is engine, got.summary()
print(json.dumps(times))
"""


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["LAKEFORGE_JARS_DIR"] = str(li.REPO / ".lakeforge" / "jars")
    out.pop("LAKEFORGE_ENV", None)
    return out


def lakeforge(root: Path, *args: str) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [LAKEFORGE, *args], cwd=root, env=env(), capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _beeline(port: int, sql: str, silent: bool = True) -> tuple[float, str]:
    import pyspark

    home = Path(pyspark.__file__).parent
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(home / "bin" / "beeline"), "-u", f"jdbc:hive2://127.0.0.1:{port}/default",
         "-n", "bench", f"--silent={str(silent).lower()}", "--outputformat=csv2", "-e", sql],
        env={**env(), "SPARK_HOME": str(home)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"beeline failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return time.monotonic() - t0, proc.stdout + proc.stderr


def measure_jdbc(root: Path, reps: int) -> dict[str, list[float]]:
    """The JDBC round trip through ``lakeforge serve`` (module docstring)."""
    import re
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    server = subprocess.Popen(
        [LAKEFORGE, "serve", "--port", str(port)], cwd=root, env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out: dict[str, list[float]] = {"small": [], "large": [], "session": []}
    try:
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() - t0 > 300:
                raise SystemExit(f"lakeforge serve did not listen: {server.stderr}")
            time.sleep(0.3)
        out["start"] = [time.monotonic() - t0]
        for _ in range(reps):
            for name, query in QUERIES.items():
                wall, _text = _beeline(port, query)
                out[name].append(wall)
        _wall, text = _beeline(port, "; ".join([QUERIES["large"]] * (reps + 2)), silent=False)
        out["session"] = [
            float(t) for t in re.findall(r"rows? selected \(([\d.]+) seconds\)", text)
        ]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
    li.log("jdbc: " + json.dumps(out))
    return out


def setup(work: Path, scale: float) -> Path:
    data = li.generate_lineitem(work.parent, scale)
    shutil.rmtree(work, ignore_errors=True)
    project = li.write_project(work, data, li.lakeforge_declares_dedup())
    root = project.root
    (root / "small.yml").write_text(PIPELINE)
    raw = root / "data" / "raw" / "orders"
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_text(HEADER + DELIVERIES[0])
    li.log("setup: the small pipeline, then TPC-H lineitem bronze + silver")
    lakeforge(root, "run", "small.yml")
    lakeforge(root, "run", str(project.pipeline.relative_to(root)))
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=li.REPO / "bench" / "work" / "sql_latency")
    ap.add_argument("--results", type=Path, default=li.REPO / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    started, load_start = li.now_utc(), li.loadavg()
    root = setup(args.work, args.scale)
    walls: dict[tuple[str, str], list[float]] = {(q, e): [] for q in QUERIES for e in ENGINES}
    for rep in range(1, args.reps + 1):
        for name, query in QUERIES.items():
            answers = {}
            for engine in ENGINES if rep % 2 else reversed(ENGINES):
                wall, out = lakeforge(root, "sql", query, "--engine", engine, "--format", "json")
                walls[(name, engine)].append(wall)
                answers[engine] = [json.loads(line) for line in out.splitlines()]
            if answers["fast"] != answers["spark"]:
                raise SystemExit(f"{name}: the engines disagree: {answers}")
            li.log(f"rep {rep} {name}: " + ", ".join(
                f"{e} {walls[(name, e)][-1]:.2f}s" for e in ENGINES
            ))  # fmt: skip
    in_process = {}
    for engine in ENGINES:
        proc = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, engine, QUERIES["large"]],
            cwd=root, env=env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        in_process[engine] = json.loads(proc.stdout.strip().splitlines()[-1])

    jdbc = measure_jdbc(root, args.reps)

    def med(name: str, engine: str) -> float:
        return statistics.median(walls[(name, engine)])

    lines = [
        f"## {started} — `.venv/bin/python bench/sql_latency.py --scale {args.scale:g} "
        f"--reps {args.reps}`",
        "",
        *(
            ["> Smoke test only (scale < 0.5 or fewer than 3 repetitions): not a measurement.", ""]
            if args.reps < 3 or args.scale < 0.5
            else []
        ),
        f"- machine: {li.cpu_model()}, {li.meminfo_total()}; load average {load_start} at "
        f"start, {li.loadavg()} at end",
        f"- tables: small `gold.customer_value` (the warm-up pipeline's); large "
        f"`silver.lineitem` (TPC-H lineitem scale {args.scale:g}, bench/lineitem.py's job)",
        "- one fresh `lakeforge sql ... --format json` process per sample, engines "
        "alternating; both engines' rows compared in every repetition (equal)",
        "",
        "| query | fast engine, median wall s | Spark engine, median wall s | Spark / fast |",
        "|---|---:|---:|---:|",
    ]
    for name in QUERIES:
        fast, spark = med(name, "fast"), med(name, "spark")
        lines.append(f"| {name} | {fast:.2f} | {spark:.2f} | {spark / fast:.1f} |")
    lines += [
        "",
        "In one process (`lakeforge.sql.engine.answer`), the large query, first / second "
        f"answer: fast {in_process['fast'][0]:.2f} / {in_process['fast'][1]:.2f} s; "
        f"Spark {in_process['spark'][0]:.2f} / {in_process['spark'][1]:.2f} s (the first "
        "includes starting the session).",
        "",
        "JDBC (`lakeforge serve` + beeline): a fresh beeline process per query, median wall "
        f"small {statistics.median(jdbc['small']):.2f} s, large "
        f"{statistics.median(jdbc['large']):.2f} s (client JVM start and connect included); "
        "the large query over one connection, as beeline reports it: "
        + ", ".join(f"{t:.2f}" for t in jdbc["session"])
        + " s (the first is the server's first query). Server start to listening: "
        f"{jdbc['start'][0]:.1f} s.",
        "",
        "Per repetition (wall s): "
        + "; ".join(
            f"{n} {e}: " + ", ".join(f"{w:.2f}" for w in walls[(n, e)])
            for n in QUERIES
            for e in ENGINES
        ),
    ]
    section = "\n".join(lines) + "\n\n"
    li.append_results(args.results, section)
    print(section)
    shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
