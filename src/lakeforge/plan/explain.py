"""Render a plan for humans (``lakeforge plan``): the dry run is the plan, printed.

Both renderings go through :func:`lakeforge.redaction.redact` before they are laid out (a
table may fold a long cell across lines, which a line-wise redactor could not see whole).
"""

from __future__ import annotations

from rich.table import Table

from lakeforge.plan.load import LoadedPipeline
from lakeforge.plan.steps import ConformStep, IngestStep, Plan, TransformStep
from lakeforge.redaction import redact


def plan_table(plan: Plan) -> Table:
    """One row per step, in execution order."""
    table = Table(
        title=redact(f"plan: {plan.pipeline} (env {plan.env}, config {plan.config_hash})"),
        title_justify="left",
    )
    for col in ("#", "step", "writes", "mode", "reads", "declared at"):
        table.add_column(col, overflow="fold")
    for i, step in enumerate(plan.steps, 1):
        extra = ""
        if isinstance(step, ConformStep):
            extra = f"\n+ quarantine {step.quarantine_table}"
            if step.expectations:
                extra += f"\n+ {len(step.expectations)} expectations"
        cells = (
            str(i),
            step.kind,
            step.table + extra,
            step.mode,
            "\n".join(step.reads),
            str(step.location),
        )
        table.add_row(*(redact(c) for c in cells))
    return table


def plan_text(plan: Plan, loaded: LoadedPipeline | None = None) -> str:
    """Plain-text rendering (stable, for logs and tests)."""
    lines = [
        f"plan {plan.pipeline} env={plan.env} config={plan.config_hash} steps={len(plan.steps)}"
    ]
    if loaded is not None:
        prof = loaded.profile
        lines.append(
            f"  spark master={prof.spark.master or '(from spark-submit)'} "
            f"warehouse={prof.warehouse} metastore={prof.metastore.kind}"
        )
    for i, step in enumerate(plan.steps, 1):
        lines.append(
            f"{i:>3}. {step.kind:<9} {step.table:<32} mode={step.mode:<9} "
            f"reads={', '.join(step.reads) or '-'}  ({step.location})"
        )
        if isinstance(step, ConformStep):
            cols = ", ".join(f"{c}:{s.type}" for c, s in step.spec.columns.items())
            lines.append(f"       schema {cols}; failures -> {step.quarantine_table}")
            if step.spec.keys:
                seq = f" latest by {step.spec.sequence_by}" if step.spec.sequence_by else ""
                lines.append(f"       one row per {step.spec.keys}{seq}")
            for e in step.expectations:
                envs = f" in {','.join(e.environments)}" if e.environments else ""
                lines.append(f"       expect {e.name} [{e.action}{envs}] ({e.origin})")
        elif isinstance(step, IngestStep) and step.spec.source.options:
            lines.append(f"       options {step.spec.source.options}")
        elif isinstance(step, TransformStep):
            if step.sql is not None:
                # Redacted before it is cut: a secret cut in two would not be found.
                lines.append(f"       sql {redact(' '.join(step.sql.split()))[:100]}")
            else:
                lines.append(f"       python {step.spec.python}")
    return redact("\n".join(lines))
