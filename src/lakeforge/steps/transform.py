"""Transform: SQL or a Python function over registered tables -> gold.

Modes (each a write strategy, :mod:`lakeforge.write`): ``overwrite`` (full rebuild),
``append`` (idempotent: the txn version is derived from the input versions, so a retry
with unchanged inputs is skipped), ``merge`` (upsert the result by ``keys``). Inputs are pinned: their versions are read once and
recorded; the SQL may also pin explicitly with ``table@version``.

Gold is read-only toward everything but its own table. ``spark.sql`` runs commands
eagerly, so gold SQL is parsed by Spark's own parser first and anything but one query is
refused (LF-RUN-008) before it runs. A Python transform gets a :class:`ReadOnlySession`
whose ``sql`` takes the same check and whose catalog refuses changes; since a function
can still reach the real session (``df.sparkSession``, ``df.write``), the Delta logs of
every table in the lakeforge schemas are compared before and after it, and a table it
changed fails the step (LF-RUN-008), naming the table so it can be restored.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lakeforge.config.sql_guard import strip_trailing_semicolons
from lakeforge.config.table_refs import rewrite_sql
from lakeforge.errors import Code, RunError
from lakeforge.io.delta import (
    count_rows,
    lakeforge_meta,
    latest_version,
    parse_metadata,
    read_version,
    table_exists,
)
from lakeforge.plan.steps import TransformStep
from lakeforge.results import StepResult
from lakeforge.steps.context import StepContext
from lakeforge.steps.versions import resolve_version
from lakeforge.write import Target, spec_hash, strategy_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.catalog import Catalog

# Schemas whose tables a gold step must leave alone: the layers and the system tables.
GUARDED_SCHEMAS = ("bronze", "silver", "gold", "lakeforge")
_COMMAND = "org.apache.spark.sql.catalyst.plans.logical.Command"


def require_query(spark: SparkSession, sql: str, where: str) -> None:
    """Refuse ``sql`` unless Spark's parser reads it as one query; nothing is executed.

    ``parsePlan`` gives the plan ``spark.sql`` would run (a ``Command`` is refused with its
    name); ``parseQuery`` accepts only the query grammar (SELECT, WITH, set operations,
    VALUES, ``TABLE t``) up to the end of the text, which also rules out INSERT (not a
    ``Command`` before analysis), EXECUTE IMMEDIATE, CALL and several statements.

    Raises:
        RunError: LF-RUN-008 when the text is anything but one query.
    """
    jss = spark._jsparkSession
    parser = jss.sessionState().sqlParser()
    try:
        plan = parser.parsePlan(sql)
    except Exception:
        return  # not valid SQL: spark.sql raises the parse error itself, having run nothing
    kind = str(plan.getClass().getSimpleName()).rstrip("$")
    jvm = spark._jvm
    assert jvm is not None
    command = jvm.java.lang.Class.forName(_COMMAND)
    is_query = not command.isInstance(plan)
    if is_query:
        try:
            parser.parseQuery(strip_trailing_semicolons(sql))
        except Exception:
            is_query = False
    if not is_query:
        raise RunError(
            Code.GOLD_WRITE_REJECTED,
            f"{where}: refused to run a {kind} statement: gold reads with one query "
            "(SELECT, WITH ... SELECT, UNION/INTERSECT/EXCEPT, VALUES) and writes only "
            "its own table, through lakeforge",
        )


# Catalog calls that only read; every other catalog method is refused by the proxy.
_CATALOG_READS = frozenset(
    {
        "currentCatalog",
        "currentDatabase",
        "databaseExists",
        "functionExists",
        "getDatabase",
        "getFunction",
        "getTable",
        "isCached",
        "listCatalogs",
        "listColumns",
        "listDatabases",
        "listFunctions",
        "listTables",
        "tableExists",
    }
)


class ReadOnlyCatalog:
    """``spark.catalog`` for a Python transform: lookups pass, changes are refused."""

    def __init__(self, catalog: Catalog, where: str) -> None:
        self._catalog = catalog
        self._where = where

    def __getattr__(self, name: str) -> Any:
        if name in _CATALOG_READS:
            return getattr(self._catalog, name)
        raise RunError(
            Code.GOLD_WRITE_REJECTED,
            f"{self._where}: spark.catalog.{name} is refused in a gold transform "
            "(the catalog is read-only there)",
        )


class ReadOnlySession:
    """The SparkSession a Python transform receives.

    ``sql`` runs only queries (:func:`require_query`), ``catalog`` refuses changes and
    ``newSession`` is refused; everything else (``table``, ``read``, ``createDataFrame``,
    ``range``, ``udf``, ...) is the real session's.
    """

    def __init__(self, spark: SparkSession, where: str) -> None:
        self._spark = spark
        self._where = where

    def sql(self, sqlQuery: str, args: Any = None, **kwargs: Any) -> DataFrame:
        spark = self._spark
        if not kwargs:
            require_query(spark, sqlQuery, self._where)
            return spark.sql(sqlQuery, args)
        # `{df}` placeholders: format as pyspark would, check the text that would run.
        from pyspark.sql.sql_formatter import SQLStringFormatter

        formatter = SQLStringFormatter(spark)
        try:
            text = formatter.format(sqlQuery, **kwargs)
            require_query(spark, text, self._where)
            return spark.sql(text, args)
        finally:
            formatter.clear()

    @property
    def catalog(self) -> ReadOnlyCatalog:
        return ReadOnlyCatalog(self._spark.catalog, self._where)

    def newSession(self) -> SparkSession:
        raise RunError(
            Code.GOLD_WRITE_REJECTED,
            f"{self._where}: spark.newSession() is refused in a gold transform",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spark, name)


@dataclass(frozen=True)
class _LogState:
    """A Delta table's log as seen from its folder: which log, and its newest commit."""

    log_id: int  # inode of _delta_log: a dropped and re-created table gets a new one
    version: int
    folder: str


def _newest_commit(log: str) -> int:
    versions = [
        int(name[:-5]) for name in os.listdir(log) if name.endswith(".json") and name[:-5].isdigit()
    ]
    return max(versions, default=-1)


def _local_folder(uri: str) -> str | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path
    return None


def snapshot_tables(spark: SparkSession, skip: str) -> dict[str, _LogState] | None:
    """The Delta log state of every table in :data:`GUARDED_SCHEMAS` except ``skip``.

    Read from the schema folders (one listing each, no Spark job), so it is cheap even
    with hundreds of tables. None when a schema is not on the local filesystem: then the
    tables are compared through Spark instead (:func:`_versions_via_spark`).
    """
    out: dict[str, _LogState] = {}
    for schema in GUARDED_SCHEMAS:
        if not spark.catalog.databaseExists(schema):
            continue
        folder = _local_folder(spark.catalog.getDatabase(schema).locationUri)
        if folder is None:
            return None
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            log = os.path.join(entry.path, "_delta_log")
            name = f"{schema}.{entry.name.lower()}"
            if name == skip or not os.path.isdir(log):
                continue
            try:
                out[name] = _LogState(os.stat(log).st_ino, _newest_commit(log), entry.path)
            except OSError:  # removed while we looked
                continue
    return out


def _versions_via_spark(spark: SparkSession, skip: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for schema in GUARDED_SCHEMAS:
        if not spark.catalog.databaseExists(schema):
            continue
        for table in spark.catalog.listTables(schema):
            name = f"{schema}.{table.name.lower()}"
            # Views (lakeforge.runs is one) have no versions to compare.
            if name != skip and not table.isTemporary and table.tableType != "VIEW":
                version = latest_version(spark, name)
                if version is not None:
                    out[name] = version
    return out


def _commit_run_id(folder: str, version: int) -> str | None:
    """The lakeforge run id in a commit's userMetadata (None: not a lakeforge commit)."""
    path = Path(folder, "_delta_log", f"{version:020d}.json")
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                info = json.loads(line).get("commitInfo")
                if info is not None:
                    run_id = parse_metadata(info.get("userMetadata")).get("lakeforge_run_id")
                    return str(run_id) if run_id else None
    except (OSError, ValueError):
        return None
    return None


def changed_tables(
    before: dict[str, _LogState], after: dict[str, _LogState], run_id: str
) -> list[str]:
    """Tables created, dropped, re-created or committed to between two snapshots.

    A new commit tagged with another lakeforge run's id (a run of another pipeline on
    the same metastore) is not a change by this step.
    """
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None or new is None or old.log_id != new.log_id:
            state = "created" if old is None else "dropped" if new is None else "re-created"
            out.append(f"{name} ({state})")
            continue
        foreign = all(
            (rid := _commit_run_id(new.folder, v)) is not None and rid != run_id
            for v in range(old.version + 1, new.version + 1)
        )
        if new.version != old.version and not foreign:
            out.append(f"{name} (version {old.version} -> {new.version})")
    return out


def _python(ctx: StepContext, step: TransformStep, versions: dict[str, int]) -> DataFrame:
    assert step.spec.python is not None
    module_name, _, func_name = step.spec.python.partition(":")
    # Like dbt's project-relative imports: the pipeline's folder is importable.
    folder = str(ctx.pipeline_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise RunError(
            Code.STEP_FAILED,
            f"{step.location}: {step.table}: cannot load {step.spec.python}: {exc}",
        ) from None
    inputs = {t: read_version(ctx.spark, t, v) for t, v in versions.items()}
    where = f"{step.location}: {step.table}"
    local = snapshot_tables(ctx.spark, step.table)
    before = local if local is not None else _versions_via_spark(ctx.spark, step.table)
    out = func(ReadOnlySession(ctx.spark, where), inputs)
    if local is not None:
        after = snapshot_tables(ctx.spark, step.table)
        changed = changed_tables(local, after, ctx.run_id) if after is not None else ["?"]
    else:
        now = _versions_via_spark(ctx.spark, step.table)
        changed = [
            f"{t} ({before.get(t)} -> {now.get(t)})"
            for t in sorted(set(before) | set(now))
            if before.get(t) != now.get(t)
        ]
    if changed:
        raise RunError(
            Code.GOLD_WRITE_REJECTED,
            f"{where}: {step.spec.python} changed other tables: {', '.join(changed)}; a gold "
            "transform returns a DataFrame and lakeforge writes only its own table "
            "(restore them with lakeforge restore / Delta RESTORE)",
        )
    if not hasattr(out, "sparkSession"):
        raise RunError(
            Code.STEP_FAILED,
            f"{step.location}: {step.table}: {step.spec.python} returned {type(out).__name__}, "
            "not a Spark DataFrame",
        )
    return out


def run_transform(ctx: StepContext, step: TransformStep, result: StepResult) -> None:
    spark = ctx.spark
    versions: dict[str, int] = {}
    for table in step.inputs:
        version = resolve_version(spark, table)
        versions[table] = version
        result.inputs[table] = version
        result.rows_read += count_rows(spark, table, version)
    digest = spec_hash(step.spec.model_dump_json(), step.sql or "")
    exists = table_exists(spark, step.table)  # one metastore lookup for the step
    previous = lakeforge_meta(spark, step.table, known=True) if exists else {}
    if previous.get("source_versions") == versions and previous.get("spec_hash") == digest:
        # Same inputs, same definition: the table already holds this result.
        result.version = latest_version(spark, step.table, known=True)
        return
    if step.sql is not None:
        text = rewrite_sql(step.sql)
        require_query(spark, text, f"{step.location}: {step.table}")
        df = spark.sql(text)
    else:
        df = _python(ctx, step, versions)
    meta: dict[str, Any] = {"source_versions": versions, "spec_hash": digest}
    strategy = strategy_for(step.spec.mode)
    target = Target(
        step.table,
        step.table,
        ctx.run_id,
        exists,
        meta,
        txn=strategy.gold_txn(step.table, versions),
        keys=tuple(step.spec.keys),
        keys_nullable=True,  # gold keys may be null: null matches null
        replace_schema=True,  # a rebuild takes the query's schema
    )
    commit = strategy.write(df, target)
    result.version = commit.version
    result.committed = commit.committed_now
    result.rows_written = commit.rows_written
