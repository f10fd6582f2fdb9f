"""Execute a plan: one visitor per step kind, a result per step, a result per run.

A failing step stops the run (downstream steps are marked ``skipped``); the error names
the step's YAML location. The row-accounting invariant (rows in = landed + quarantined)
is checked after every step and a violation fails the run.

A run holds its pipeline's lock (:mod:`lakeforge.runtime.lock`) throughout, so two runs
of one pipeline in a project never interleave; holding it, a run marks the pipeline's
runs left ``running`` by a killed process as ``interrupted``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.errors import Code, LakeforgeError, RunError, StorageError
from lakeforge.faults import fail_point
from lakeforge.lineage.system_tables import (
    ensure_system_tables,
    mark_interrupted,
    record_run,
    record_step,
)
from lakeforge.plan.load import LoadedPipeline
from lakeforge.plan.steps import ConformStep, IngestStep, Plan, Step, TransformStep
from lakeforge.results import RunResult, StepResult, new_run_id
from lakeforge.runtime.lock import Holder, mark_ended, pipeline_lock, previous_run_ended
from lakeforge.steps.context import StepContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import SparkSession


def _visit(ctx: StepContext, step: Step, result: StepResult) -> None:
    if isinstance(step, IngestStep):
        from lakeforge.steps.ingest import run_ingest

        run_ingest(ctx, step, result)
    elif isinstance(step, ConformStep):
        from lakeforge.steps.conform import run_conform

        run_conform(ctx, step, result)
    elif isinstance(step, TransformStep):
        from lakeforge.steps.transform import run_transform

        run_transform(ctx, step, result)
    else:  # pragma: no cover - the plan only builds the three kinds
        raise TypeError(f"unknown step {step!r}")


def execute(
    plan: Plan,
    spark: SparkSession,
    project_root: Path,
    run_id: str | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    data_env: str | None = None,
) -> RunResult:
    """Run every step of ``plan`` in order on ``spark``.

    Args:
        plan: the plan to run.
        spark: a Delta-enabled session (see :func:`lakeforge.runtime.session.build_session`).
        project_root: base of relative source paths.
        run_id: reuse an id (default: a new one).
        on_step: called after each step finishes (progress display).
        data_env: the data environment (e.g. ``training`` / ``serving``): expectations bound
            to other environments are skipped.

    Returns:
        The run's result; ``status`` is ``failed`` if any step failed (never raises for a step).

    Raises:
        RunError: ``LF-RUN-011`` another process runs this pipeline of this project (the
            lock is taken here unless the caller, e.g. the CLI, already holds it).
    """
    rid = run_id or new_run_id()
    with pipeline_lock(project_root, plan.pipeline, rid), _warehouse_lease(plan, rid):
        return _execute(plan, spark, project_root, rid, on_step, data_env)


@contextlib.contextmanager
def _warehouse_lease(plan: Plan, run_id: str) -> Iterator[None]:
    """On an s3a:// warehouse, hold the pipeline's writer lease there (io/lease.py)."""
    if plan.s3 is None or not plan.warehouse.startswith("s3a://"):
        yield
        return
    from lakeforge.io.lease import writer_lease

    with writer_lease(plan.s3, plan.warehouse, plan.pipeline, run_id):
        yield


def _execute(
    plan: Plan,
    spark: SparkSession,
    project_root: Path,
    rid: str,
    on_step: Callable[[StepResult], None] | None,
    data_env: str | None,
) -> RunResult:
    from lakeforge.runtime.session import ensure_schemas

    started = time.monotonic()
    result = RunResult(
        run_id=rid,
        pipeline=plan.pipeline,
        env=plan.env,
        config_hash=plan.config_hash,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    result.steps = [StepResult(table=s.table, kind=s.kind, mode=s.mode) for s in plan.steps]
    ensure_schemas(spark, tuple(sorted({s.table.split(".")[0] for s in plan.steps})))
    ensure_system_tables(spark)
    if not previous_run_ended(project_root, plan.pipeline):
        # We hold the lock: a run still ``running`` has no process left. Skipped when the
        # lock file says the run before us recorded its end (one query fewer per run).
        mark_interrupted(spark, plan.pipeline, rid)
    record_run(spark, result)
    ctx = StepContext(
        spark=spark,
        run_id=rid,
        project_root=project_root,
        pipeline_dir=Path(plan.directory),
        pipeline=plan.pipeline,
        data_env=data_env,
        reports_dir=reports_dir(project_root),
        s3=plan.s3,
    )
    failed = False
    for step, step_result in zip(plan.steps, result.steps, strict=True):
        if failed:
            step_result.status = "skipped"
            continue
        t0 = time.monotonic()
        try:
            _visit(ctx, step, step_result)
            if not step_result.balanced:
                raise RunError(
                    Code.ROW_ACCOUNTING,
                    f"{step.location}: {step.table}: rows in {step_result.rows_read} != landed "
                    f"{step_result.rows_written} + quarantined {step_result.rows_quarantined} "
                    f"+ dropped {step_result.rows_dropped} "
                    f"+ deduplicated {step_result.rows_deduplicated}",
                )
            step_result.status = "ok"
        except LakeforgeError as exc:
            failed = True
            step_result.status = "failed"
            step_result.error = str(exc)
            result.error, result.error_code = str(exc), exc.code
        except Exception as exc:  # Spark errors: the one translation, pointed at the YAML
            from lakeforge.runtime.spark_errors import describe, is_spark_error, translate

            failed = True
            code = Code.STEP_FAILED
            if is_spark_error(exc):
                translated = translate(exc)
                # Object storage failures keep their own code (bucket, access, endpoint).
                if isinstance(translated, StorageError):
                    code = translated.code
                    first = translated.message + (
                        f" (hint: {translated.hint})" if translated.hint else ""
                    )
                else:
                    first = describe(exc)
            else:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            step_result.status = "failed"
            step_result.error = f"{code} {step.location}: {step.table}: {first}"
            result.error, result.error_code = step_result.error, code
        step_result.seconds = round(time.monotonic() - t0, 3)
        if step_result.status == "ok":
            record_step(spark, plan.pipeline, rid, step_result)
        if on_step is not None:
            on_step(step_result)
        fail_point(f"step.after:{step.table}")
    result.status = "failed" if failed else "succeeded"
    result.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    result.seconds = round(time.monotonic() - started, 3)
    record_run(spark, result)
    mark_ended(project_root, plan.pipeline)
    return result


def reports_dir(project_root: Path) -> Path:
    """Expectation reports: ``reports/quality/<run id>/`` under the project (git-ignored)."""
    return project_root / "reports" / "quality"


def run_pipeline(
    loaded: LoadedPipeline,
    spark: SparkSession | None = None,
    run_id: str | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    data_env: str | None = None,
    wait: float = 0.0,
    on_wait: Callable[[Holder | None], None] | None = None,
    on_start: Callable[[], None] | None = None,
    select: Sequence[str] = (),
) -> RunResult:
    """Plan and execute ``loaded``; starts the profile's session unless one is given.

    ``select``: run only the steps these selectors name (plan/select.py), e.g. one
    orchestrator task per step; an unknown one is ``LF-PLAN-002`` before anything starts.

    The one way to run a pipeline: the API's ``lakeforge.run`` and the CLI's ``run`` both
    call it. The pipeline's lock is taken before the session starts (a second run neither
    starts Spark nor touches the metastore); ``wait`` seconds are spent waiting for another
    run of it to finish (``on_wait`` is told who it is) before ``LF-RUN-011``. After such a
    wait on a Derby metastore, the session waits for the other JVM to let go of Derby.
    ``on_start`` is called just before the session is started (not when ``spark`` is given).
    """
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.select import select as select_steps
    from lakeforge.quality.resolve import check_data_env
    from lakeforge.runtime.session import build_session, project_path
    from lakeforge.runtime.spark_errors import wait_metastore_free

    check_data_env(loaded, data_env)
    plan = select_steps(build_plan(loaded), select)
    rid = run_id or new_run_id()
    waited = False

    def waiting(holder: Holder | None) -> None:
        nonlocal waited
        waited = True
        if on_wait is not None:
            on_wait(holder)

    with pipeline_lock(loaded.project_root, plan.pipeline, rid, wait=wait, on_wait=waiting):
        session = spark
        if session is None:
            if waited and loaded.profile.metastore.kind == "derby":
                # The run we waited for released its lock; its JVM may still be closing Derby.
                wait_metastore_free(
                    project_path(loaded.project_root, loaded.profile.metastore.path), 60
                )
            if on_start is not None:
                on_start()
            session = build_session(
                loaded.profile, loaded.project_root, f"lakeforge:{plan.pipeline}"
            )
        return execute(
            plan, session, loaded.project_root, run_id=rid, on_step=on_step, data_env=data_env
        )
