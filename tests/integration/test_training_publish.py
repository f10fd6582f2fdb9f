"""Publishing training sets on the shared session (issue 6 points 2, 5, 6): one commit
partitioned by split, a complete manifest, order-independent checksums, reproduce from
pinned versions (and its failure once VACUUM removed them), export, the Python API and
the CLI."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import lakeforge
from lakeforge.cli.main import cli
from lakeforge.errors import Code, PublishError
from lakeforge.io.delta import write_table
from lakeforge.io.digest import sha256_file
from lakeforge.runtime.session import ensure_schemas
from lakeforge.training.checksum import checksum, spark_checksums
from lakeforge.training.export import read_sums
from lakeforge.training.plan import iso_micros
from lakeforge.training.publish import Published, publish
from lakeforge.training.reproduce import reproduce
from lakeforge.training.spec import TrainingSetSpec
from lakeforge.training.splits import assign

pytestmark = pytest.mark.spark

T0 = datetime(2026, 3, 1, 12, 0, 0)
LABELS_SCHEMA = "customer_id BIGINT, order_ts TIMESTAMP, status STRING, is_late BOOLEAN"
FEATURES_SCHEMA = "cust BIGINT, as_of TIMESTAMP, orders INT, spend DOUBLE"
RunCli = Callable[..., Result]


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


def labels_rows(n_customers: int = 8) -> list[tuple[Any, ...]]:
    rows = []
    for c in range(1, n_customers + 1):
        for k in range(2):
            status = "cancelled" if (c + k) % 5 == 0 else "completed"
            rows.append((c, T0 + timedelta(days=k, hours=c), status, (c + k) % 3 == 0))
    return rows


def features_rows(n_customers: int = 8) -> list[tuple[Any, ...]]:
    # Customer 1 has no feature row at all (the default applies); customer 2's only row
    # is 30 minutes before its first label, inside the 1h lag (so no match there).
    rows = []
    for c in range(3, n_customers + 1):
        rows.append((c, T0 - timedelta(days=1), c, 10.5 * c))
        rows.append((c, T0 + timedelta(hours=c) - timedelta(hours=2), c + 1, 11.0 * c))
    rows.append((2, T0 + timedelta(hours=2) - timedelta(minutes=30), 99, 1.0))
    return rows


KEPT = sum(1 for r in labels_rows() if r[2] != "cancelled")


def write(
    spark: SparkSession, table: str, rows: list[tuple[Any, ...]], schema: str, mode: str
) -> int:
    df = spark.createDataFrame(rows, schema)
    return write_table(df, table, mode, f"run-{uuid.uuid4().hex[:6]}", table).version


@dataclass
class Inputs:
    labels: str
    features: str
    name: str

    def spec(self, **splits: Any) -> TrainingSetSpec:
        return TrainingSetSpec.model_validate(
            {
                "name": self.name,
                "labels": {
                    "table": self.labels,
                    "keys": ["customer_id"],
                    "event_time": "order_ts",
                    "columns": ["is_late"],
                    "filter": "status <> 'cancelled'",
                },
                "features": [
                    {
                        "table": self.features,
                        "keys": ["cust"],
                        "event_time": "as_of",
                        "features": ["orders", "spend"],
                        "lag": "1h",
                        "defaults": {"orders": 0},
                        "prefix": "cv_",
                    }
                ],
                "splits": splits
                or {"salt": "s1", "fractions": {"train": 0.5, "validation": 0.25, "test": 0.25}},
            }
        )


def make_inputs(spark: SparkSession) -> Inputs:
    ensure_schemas(spark)
    inputs = Inputs(f"silver.{unique('labels')}", f"gold.{unique('feats')}", unique("ts"))
    write(spark, inputs.labels, labels_rows(), LABELS_SCHEMA, "overwrite")
    write(spark, inputs.features, features_rows(), FEATURES_SCHEMA, "overwrite")
    return inputs


@pytest.fixture(scope="module")
def published(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Inputs, Published]:
    """One set published from fresh inputs; tests that move the inputs on make their own."""
    inputs = make_inputs(spark)
    root = tmp_path_factory.mktemp("project")
    return inputs, publish(spark, inputs.spec(), root, run_id="run-publish-1")


def history(spark: SparkSession, table: str) -> list[Any]:
    return spark.sql(f"DESCRIBE HISTORY {table}").orderBy("version").collect()


# --- publish ------------------------------------------------------------------------------


def test_publish_writes_one_commit_partitioned_by_split(
    spark: SparkSession, published: tuple[Inputs, Published], tmp_path: Path
) -> None:
    inputs, first = published
    assert first.table == f"training.{inputs.name}"
    assert first.id == f"{inputs.name}-v{first.table_version}"
    assert [r["version"] for r in history(spark, first.table)] == [first.table_version]
    detail = spark.sql(f"DESCRIBE DETAIL {first.table}").first()
    assert detail is not None and list(detail["partitionColumns"]) == ["split"]

    # Rows: the labels but the cancelled ones; each split as the manifest says.
    counts = {
        r["split"]: r["count"] for r in spark.table(first.table).groupBy("split").count().collect()
    }
    assert sum(counts.values()) == KEPT
    assert {s: n for s, n in first.rows.items() if n} == counts

    # A second publish is exactly one more commit, with its own id.
    again = publish(spark, inputs.spec(), tmp_path, run_id="run-publish-2")
    assert again.table_version == first.table_version + 1
    versions = history(spark, first.table)
    assert [r["version"] for r in versions] == [first.table_version, again.table_version]
    assert json.loads(versions[-1]["userMetadata"])["lakeforge_run_id"] == "run-publish-2"
    assert again.id == f"{inputs.name}-v{again.table_version}"
    assert again.manifest["splits"] == first.manifest["splits"]


def test_output_columns_and_point_in_time_values(
    spark: SparkSession, published: tuple[Inputs, Published]
) -> None:
    _, pub = published
    table = spark.table(pub.table)
    assert table.columns == ["customer_id", "order_ts", "cv_orders", "cv_spend", "is_late", "split"]
    rows = {(r["customer_id"], r["order_ts"]): r for r in table.collect()}
    # Customer 1: no feature row -> orders defaults to 0, spend stays null.
    r1 = rows[(1, T0 + timedelta(hours=1))]
    assert (r1["cv_orders"], r1["cv_spend"]) == (0, None)
    # Customer 2: its only row is 30 min old at label time, under the 1h lag.
    r2 = rows[(2, T0 + timedelta(hours=2))]
    assert (r2["cv_orders"], r2["cv_spend"]) == (0, None)
    # Customer 4 day 0: the row 2h before the label; day 1: the same row (newest <= t-1h).
    r4 = rows[(4, T0 + timedelta(hours=4))]
    assert (r4["cv_orders"], r4["cv_spend"]) == (5, 44.0)
    # Splits are the plain-Python assignment of the entity key.
    spec = published[0].spec()
    for (cust, _), r in rows.items():
        assert r["split"] == assign([cust], "s1", spec.splits.ranges())


def test_manifest_has_every_field(spark: SparkSession, published: tuple[Inputs, Published]) -> None:
    inputs, pub = published
    m = pub.manifest
    for key in (
        "id",
        "name",
        "table",
        "table_version",
        "created_at",
        "run_id",
        "spec",
        "config_hash",
        "inputs",
        "code_version",
        "versions",
        "columns",
        "schema",
        "checksum",
        "splits",
    ):
        assert key in m, key
    assert (m["id"], m["name"], m["table_version"], m["run_id"]) == (
        pub.id,
        inputs.name,
        pub.table_version,
        "run-publish-1",
    )
    assert m["spec"]["labels"]["table"] == inputs.labels
    assert len(m["config_hash"]) == 16
    assert m["code_version"].startswith(f"lakeforge {lakeforge.__version__}")
    assert m["versions"]["spark"] == spark.version
    assert m["versions"]["delta"] and m["versions"]["python"] and m["versions"]["lakeforge"]
    assert datetime.fromisoformat(m["created_at"].replace("Z", "+00:00"))

    # Inputs: pinned versions with the commit timestamps DESCRIBE HISTORY shows.
    assert [(i["role"], i["table"], i["version"]) for i in m["inputs"]] == [
        ("labels", inputs.labels, 0),
        ("features[0]", inputs.features, 0),
    ]
    for i in m["inputs"]:
        stamp = (
            spark.sql(f"DESCRIBE HISTORY {i['table']}")
            .where(F.col("version") == i["version"])
            .select(F.unix_micros("timestamp").alias("us"))
            .first()
        )
        assert stamp is not None
        assert i["commit_timestamp"] == iso_micros(stamp["us"])
        assert i["commit_timestamp"].endswith("Z")

    assert [c["name"] for c in m["schema"]] == spark.table(pub.table).columns
    assert m["checksum"]["columns"] == [
        "customer_id",
        "order_ts",
        "cv_orders",
        "cv_spend",
        "is_late",
    ]
    assert set(m["splits"]) == {"train", "validation", "test"}

    # Statistics, recomputed by hand from the published rows.
    rows = spark.table(pub.table).collect()
    for split, s in m["splits"].items():
        mine = [r for r in rows if r["split"] == split]
        assert s["rows"] == len(mine)
        if not mine:
            continue
        spend = [r["cv_spend"] for r in mine if r["cv_spend"] is not None]
        assert s["columns"]["cv_spend"]["count"] == len(spend)
        assert s["columns"]["cv_spend"]["nulls"] == len(mine) - len(spend)
        if spend:
            assert s["columns"]["cv_spend"]["min"] == min(spend)
            assert s["columns"]["cv_spend"]["max"] == max(spend)
            assert s["columns"]["cv_spend"]["mean"] == pytest.approx(sum(spend) / len(spend))
        assert "mean" not in s["columns"]["is_late"]
        dist = {d["value"]: d["count"] for d in s["labels"]["is_late"]["distribution"]}
        assert dist == {
            v: sum(1 for r in mine if r["is_late"] is v) for v in {r["is_late"] for r in mine}
        }
        pit = s["point_in_time"]["features[0]"]
        matched = [r for r in mine if r["cv_spend"] is not None]  # spend is never null
        assert pit["table"] == inputs.features
        assert pit["matched"] == len(matched)
        assert pit["match_rate"] == pytest.approx(len(matched) / len(mine))
        if matched:
            assert set(pit["age_seconds"]) == {"min", "p25", "p50", "p75", "p95", "max"}
            assert pit["age_seconds"]["min"] >= 3600  # never younger than the lag
        assert s["checksum"] == checksum(
            [[r[c] for c in m["checksum"]["columns"]] for r in mine],
            [c["type"] for c in m["schema"] if c["name"] != "split"],
        )

    # The manifest file and the registry row hold the same manifest.
    assert json.loads(pub.manifest_path.read_text()) == m
    assert pub.manifest_path.name == f"{pub.id}.json"
    registry = spark.table("lakeforge.training_sets").where(F.col("id") == pub.id).collect()
    assert len(registry) == 1
    assert json.loads(registry[0]["manifest"]) == m
    assert registry[0]["table_version"] == pub.table_version
    assert registry[0]["config_hash"] == m["config_hash"]
    assert registry[0]["run_id"] == "run-publish-1"


def test_publish_errors_are_coded(spark: SparkSession, tmp_path: Path) -> None:
    from lakeforge.errors import SqlError

    inputs = make_inputs(spark)
    bad = inputs.spec().model_dump(mode="json")
    bad["labels"]["filter"] = "no_such_column = 1"
    with pytest.raises(SqlError) as exc:
        publish(spark, TrainingSetSpec.model_validate(bad), tmp_path)
    assert exc.value.code == Code.SQL_FAILED

    # A dropped table restarts at version 0: its id would repeat a registered one.
    first = publish(spark, inputs.spec(), tmp_path)
    spark.sql(f"DROP TABLE {first.table}")
    with pytest.raises(PublishError) as conflict:
        publish(spark, inputs.spec(), tmp_path)
    assert conflict.value.code == Code.TRAINING_ID_CONFLICT


# --- checksums ----------------------------------------------------------------------------

MIXED_SCHEMA = (
    "i INT, b BIGINT, s STRING, d DOUBLE, f FLOAT, m DECIMAL(10,2), dt DATE, ts TIMESTAMP, "
    "ok BOOLEAN, bin BINARY"
)


def mixed_rows() -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    rows: list[tuple[Any, ...]] = []
    for k in range(40):
        rows.append(
            (
                k,
                rng.randint(-(2**62), 2**62),
                rng.choice(["a", "b|c", "ü€", "", None]),
                rng.choice([0.1, -0.0, 1e23, float("nan"), float("inf"), 5e-324, None, k / 3]),
                rng.choice([0.1, 2.5, None]),
                rng.choice([Decimal("10.50"), Decimal("-0.01"), None]),
                rng.choice([date(2026, 1, 2), date(1, 1, 1), None]),
                rng.choice([T0, datetime(1969, 12, 31, 23, 59, 59, 999999), None]),
                rng.choice([True, False, None]),
                rng.choice([b"\x00\xff", b"", None]),
            )
        )
    rows.append(rows[3])  # a duplicate row counts twice
    return rows


def test_checksum_is_order_independent_and_sensitive(spark: SparkSession) -> None:
    df = spark.createDataFrame(mixed_rows(), MIXED_SCHEMA).withColumn("g", F.lit("all"))
    cols = [c for c in df.columns if c != "g"]
    base = spark_checksums(df, cols, "g")["all"]
    assert base[0] == 41
    shuffled = df.repartition(5).orderBy(F.rand(3))
    assert spark_checksums(shuffled, cols, "g")["all"] == base
    assert spark_checksums(df.coalesce(1).orderBy(F.desc("i")), cols, "g")["all"] == base

    # One value changed, a null made, a duplicate dropped: each changes the checksum.
    changed = df.withColumn(
        "m", F.when(F.col("i") == 5, F.lit(Decimal("10.51"))).otherwise(F.col("m"))
    )
    nulled = df.withColumn("s", F.when(F.col("i") == 6, F.lit(None)).otherwise(F.col("s")))
    assert spark_checksums(changed, cols, "g")["all"][1] != base[1]
    assert spark_checksums(nulled.where("i <> 6 OR s IS NULL"), cols, "g")["all"][1] != base[1]
    assert spark_checksums(df.dropDuplicates(), cols, "g")["all"][1] != base[1]

    # The documented plain-Python definition gives the same checksum.
    types = [f.dataType.simpleString() for f in df.schema.fields if f.name != "g"]
    python = checksum([[r[c] for c in cols] for r in df.collect()], types)
    assert python == base[1]


# --- reproduce ----------------------------------------------------------------------------


def test_reproduce_verifies_after_the_inputs_moved_on(spark: SparkSession, tmp_path: Path) -> None:
    inputs = make_inputs(spark)
    pub = publish(spark, inputs.spec(), tmp_path)
    # New label rows and newer feature rows: the latest versions would give another set.
    write(
        spark,
        inputs.labels,
        [(9, T0 + timedelta(days=3), "completed", True)],
        LABELS_SCHEMA,
        "append",
    )
    write(
        spark, inputs.features, [(4, T0 + timedelta(hours=3), 1000, 1.0)], FEATURES_SCHEMA, "append"
    )
    moved = publish(spark, inputs.spec(), tmp_path)
    assert moved.manifest["splits"] != pub.manifest["splits"]
    assert [i["version"] for i in moved.manifest["inputs"]] == [1, 1]

    # An explicit @0 in the spec is honoured: the same content as the first publish.
    pinned = inputs.spec().model_dump(mode="json")
    pinned["labels"]["table"] += "@0"
    pinned["features"][0]["table"] += "@v0"
    again = publish(spark, TrainingSetSpec.model_validate(pinned), tmp_path)
    assert [i["version"] for i in again.manifest["inputs"]] == [0, 0]
    assert {s: v["checksum"] for s, v in again.manifest["splits"].items()} == {
        s: v["checksum"] for s, v in pub.manifest["splits"].items()
    }

    result = reproduce(spark, pub.id)
    assert result.verified
    assert {c.split: c.checksum_actual for c in result.checks} == {
        s: v["checksum"] for s, v in pub.manifest["splits"].items()
    }
    assert result.built.output.count() == KEPT
    # The manifest file works as well as the id.
    assert reproduce(spark, str(pub.manifest_path)).verified


def test_reproduce_names_the_splits_that_differ(
    spark: SparkSession, published: tuple[Inputs, Published], tmp_path: Path
) -> None:
    _, pub = published
    tampered = json.loads(pub.manifest_path.read_text())
    busy = max(tampered["splits"], key=lambda s: tampered["splits"][s]["rows"])
    tampered["splits"][busy]["checksum"] = "0" * 16
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(tampered))
    with pytest.raises(PublishError) as exc:
        reproduce(spark, str(path))
    assert exc.value.code == Code.CHECKSUM_MISMATCH
    assert f"split {busy} " in exc.value.message
    others = [s for s in tampered["splits"] if s != busy]
    assert all(f"split {s} " not in exc.value.message for s in others)

    with pytest.raises(PublishError) as missing:
        reproduce(spark, "no_such_set-v0")
    assert missing.value.code == Code.TRAINING_SET_NOT_FOUND


@pytest.fixture
def retention_check_off(spark: SparkSession) -> Iterator[None]:
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def test_reproduce_fails_naming_the_vacuumed_input(
    spark: SparkSession, tmp_path: Path, retention_check_off: None
) -> None:
    inputs = make_inputs(spark)
    pub = publish(spark, inputs.spec(), tmp_path)
    # The update rewrites the features' only file; VACUUM RETAIN 0 deletes version 0's.
    spark.sql(f"UPDATE {inputs.features} SET spend = spend + 1 WHERE cust = 3")
    spark.sql(f"VACUUM {inputs.features} RETAIN 0 HOURS")
    with pytest.raises(PublishError) as exc:
        reproduce(spark, pub.id)
    assert exc.value.code == Code.TRAINING_INPUT_GONE
    assert f"{inputs.features} version 0" in exc.value.message
    assert inputs.labels not in exc.value.message


# --- export and the Python API ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_files_matching_their_checksum_list(
    spark: SparkSession, published: tuple[Inputs, Published], tmp_path: Path, fmt: str
) -> None:
    from lakeforge.training.export import export_split

    _, pub = published
    split = max(pub.rows, key=lambda s: pub.rows[s])
    out = tmp_path / "export"
    result = export_split(spark, pub.id, split, fmt, out)
    assert result.rows == pub.rows[split]
    assert result.checksum == pub.manifest["splits"][split]["checksum"]
    sums = read_sums(out / "SHA256SUMS")
    assert sorted(sums) == sorted(p.name for p in out.iterdir() if p.name != "SHA256SUMS")
    assert all(sha256_file(out / name) == digest for name, digest in sums.items())
    data = [out / n for n in sums if n.endswith(f".{fmt}")]
    assert data
    if fmt == "parquet":
        back = spark.read.parquet(*[str(p) for p in data])
        assert back.count() == pub.rows[split]
        assert back.columns == pub.manifest["checksum"]["columns"]
    else:
        lines = [ln for p in data for ln in p.read_text().splitlines()[1:]]
        assert len(lines) == pub.rows[split]

    with pytest.raises(PublishError) as exc:
        export_split(spark, pub.id, split, fmt, out)
    assert exc.value.code == Code.EXPORT_TARGET_EXISTS


def test_training_set_returns_the_rows_of_each_split(
    spark: SparkSession, published: tuple[Inputs, Published]
) -> None:
    inputs, pub = published
    frames = lakeforge.training_set(inputs.name, version=pub.table_version, spark=spark)
    assert list(frames) == ["train", "validation", "test"]
    ranges = inputs.spec().splits.ranges()
    for split, frame in frames.items():
        assert "split" not in frame.columns
        rows = frame.collect()
        assert len(rows) == pub.rows[split]
        assert all(assign([r["customer_id"]], "s1", ranges) == split for r in rows)
    one = lakeforge.training_set(inputs.name, split="train", pandas=True, spark=spark)
    assert list(one) == ["train"]
    newest = spark.table(f"training.{inputs.name}").where("split = 'train'").count()
    assert len(one["train"]) == newest
    with pytest.raises(PublishError) as exc:
        lakeforge.training_set(inputs.name, split="nope", spark=spark)
    assert exc.value.code == Code.TRAINING_SET_NOT_FOUND


# --- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def run_cli(lakehouse_root: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``lakeforge`` in-process from the shared session's project root (it joins the
    running session, as in test_timetravel)."""
    monkeypatch.chdir(lakehouse_root)
    monkeypatch.delenv("LAKEFORGE_ENV", raising=False)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return run


def test_cli_publish_reproduce_list_export(
    spark: SparkSession, run_cli: RunCli, lakehouse_root: Path, tmp_path: Path
) -> None:
    inputs = make_inputs(spark)
    spec = inputs.spec().model_dump(mode="json", exclude_defaults=True)
    spec_file = tmp_path / "set.yml"
    spec_file.write_text(json.dumps(spec))  # JSON is YAML

    res = run_cli("publish", str(spec_file), "--run-id", "cli-publish")
    assert res.exit_code == 0, res.output
    set_id = res.stdout.strip().splitlines()[-1]
    assert set_id == f"{inputs.name}-v0"
    assert (lakehouse_root / "training_sets" / inputs.name / f"{set_id}.json").is_file()

    res = run_cli("reproduce", set_id, "--verify")
    assert res.exit_code == 0, res.output
    assert f"verified {set_id}" in res.stdout

    res = run_cli("training-sets", "--name", inputs.name, "--format", "json")
    assert res.exit_code == 0, res.output
    listed = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(s["id"], s["run_id"]) for s in listed] == [(set_id, "cli-publish")]

    out = tmp_path / "out"
    res = run_cli("export", set_id, "--split", "train", "--format", "csv", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert (out / "SHA256SUMS").is_file()

    res = run_cli("reproduce", "missing-v1")
    assert res.exit_code == 1
    assert Code.TRAINING_SET_NOT_FOUND in res.output
