"""Pipeline config -> :class:`Plan`: steps, dependencies, order. Pure; no Spark."""

from __future__ import annotations

from lakeforge.config.loader import SYSTEM_SCHEMA
from lakeforge.config.references import sql_table_refs
from lakeforge.errors import Code, PlanError
from lakeforge.plan.dag import DAG, CycleError
from lakeforge.plan.load import LoadedPipeline
from lakeforge.plan.steps import ConformStep, IngestStep, Plan, SourceLocation, Step, TransformStep


def build_plan(loaded: LoadedPipeline) -> Plan:
    """Order the pipeline's steps so every table is written before it is read.

    Raises:
        PlanError: ``LF-PLAN-001`` with the cycle's path and where it was declared.
    """
    p = loaded.pipeline
    file = loaded.display
    steps: dict[str, Step] = {}
    for name, b in p.bronze.items():
        table = f"bronze.{name}"
        steps[table] = IngestStep(
            table=table,
            source_path=b.source.path,
            source_format=b.source.format,
            spec=b,
            location=SourceLocation(file, loaded.line_of("bronze", name)),
            allowed_roots=tuple(loaded.profile.allowed_roots),
        )
    for name, s in p.silver.items():
        table = f"silver.{name}"
        ref = s.from_.strip().lower()
        steps[table] = ConformStep(
            table=table,
            source_table=ref.split("@", 1)[0],
            source_ref=ref,
            spec=s,
            location=SourceLocation(file, loaded.line_of("silver", name)),
            expectations=tuple(loaded.expectations.get(table, ())),
        )
    for name, g in p.gold.items():
        table = f"gold.{name}"
        sql = loaded.gold_sql.get(name)
        refs = [r.name for r in sql_table_refs(sql or "")] + [
            d.strip().lower().split("@", 1)[0] for d in g.depends_on
        ]
        inputs = tuple(dict.fromkeys(r for r in refs if not r.startswith(SYSTEM_SCHEMA + ".")))
        steps[table] = TransformStep(
            table=table,
            sql=sql,
            inputs=inputs,
            spec=g,
            location=SourceLocation(file, loaded.line_of("gold", name)),
        )

    dag: DAG[str] = DAG()
    for table, step in steps.items():
        dag.add(table, [u for u in step.upstream if u in steps])
    try:
        order = dag.topological()
    except CycleError as exc:
        where = ", ".join(
            f"{t} ({steps[str(t)].location})" for t in exc.path[:-1] if str(t) in steps
        )
        raise PlanError(
            Code.CYCLE,
            f"{file}: dependency cycle: {' -> '.join(map(str, exc.path))}; declared at {where}",
        ) from None
    return Plan(
        pipeline=p.name,
        env=loaded.env,
        config_hash=loaded.config_hash,
        file=file,
        steps=tuple(steps[t] for t in order),
        directory=str(loaded.file.parent),
        warehouse=loaded.profile.warehouse,
        s3=loaded.profile.s3,
    )
