"""Expectation results out: Great Expectations' validation-result format, the
``lakeforge.quality_results`` rows, and an HTML report a person can open.

The JSON is built with Great Expectations' own result classes
(``ExpectationSuiteValidationResult``), so any tool that reads Great Expectations results
reads ours; lakeforge's additions (action, rows quarantined or dropped) are in ``meta``.
The per-table page is rendered by Great Expectations' Data Docs renderer; the run's
``index.html`` (ours) links them with one line per table.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeforge.quality.evaluate import ExpectationResult


def _config(r: ExpectationResult) -> dict[str, Any]:
    e = r.expectation
    meta = dict(e.meta)
    meta["lakeforge"] = {
        **(meta.get("lakeforge") or {}),
        "name": e.name,
        "action": str(e.action),
        "level": e.level,
        "suite": e.suite,
        "declared_at": e.origin,
        **({"environments": list(e.environments)} if e.environments else {}),
    }
    return {"type": e.type, "kwargs": e.kwargs, "meta": meta}


def _result(r: ExpectationResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.element_count is not None:
        out["element_count"] = r.element_count
    if r.unexpected_count is not None:
        out["unexpected_count"] = r.unexpected_count
    if r.unexpected_percent is not None:
        out["unexpected_percent"] = r.unexpected_percent
        out["partial_unexpected_list"] = list(r.sample)
    if r.observed_value is not None or r.expectation.level == "table":
        out["observed_value"] = r.observed_value
    return out


def suite_result(
    table: str,
    run_id: str,
    version: int | None,
    results: list[ExpectationResult],
    data_env: str | None,
    extra_meta: dict[str, Any],
) -> dict[str, Any]:
    """The step's results as a Great Expectations ``ExpectationSuiteValidationResult`` dict."""
    from great_expectations.core import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    evrs = []
    for r in results:
        cfg = _config(r)
        evrs.append(
            ExpectationValidationResult(
                success=r.success,
                expectation_config=ExpectationConfiguration(
                    type=cfg["type"], kwargs=cfg["kwargs"], meta=cfg["meta"]
                ),
                result=_result(r),
                exception_info={
                    "raised_exception": r.exception is not None,
                    "exception_message": r.exception,
                    "exception_traceback": None,
                },
            )
        )
    ok = sum(1 for r in results if r.success)
    suite = ExpectationSuiteValidationResult(
        success=all(r.success for r in results),
        results=evrs,
        suite_name=table,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(results) - ok,
            "success_percent": 100.0 * ok / len(results) if results else None,
        },
        meta={
            "run_id": run_id,
            "table": table,
            "table_version": version,
            "data_environment": data_env,
            "validation_time": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra_meta,
        },
    )
    value: dict[str, Any] = suite.to_json_dict()
    return value


def write_report(reports_dir: Path, run_id: str, table: str, suite: dict[str, Any]) -> Path:
    """Write ``<run>/<table>.json`` and ``.html`` and refresh the run's index; returns the
    table's HTML page."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from lakeforge.redaction import redact_obj

    suite = redact_obj(suite)  # reports are outputs: no resolved ${env:} value in them
    folder = reports_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{table}.json").write_text(json.dumps(suite, indent=2, default=str) + "\n")
    page = folder / f"{table}.html"
    try:
        parsed = ExpectationSuiteValidationResult(**_constructor_args(suite))
        document = ValidationResultsPageRenderer().render(parsed)
        page.write_text(DefaultJinjaPageView().render(document))
    except Exception as exc:  # the renderer is Great Expectations' own; never lose results
        page.write_text(_fallback_page(table, suite, f"{type(exc).__name__}: {exc}"))
    _write_index(folder, run_id)
    return page


def _constructor_args(suite: dict[str, Any]) -> dict[str, Any]:
    from great_expectations.core import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    results = []
    for r in suite["results"]:
        cfg = r["expectation_config"]
        results.append(
            ExpectationValidationResult(
                success=r["success"],
                expectation_config=ExpectationConfiguration(
                    type=cfg["type"], kwargs=cfg["kwargs"], meta=cfg.get("meta")
                ),
                result=r.get("result") or {},
                exception_info=r.get("exception_info"),
            )
        )
    return {
        "success": suite["success"],
        "results": results,
        "suite_name": suite["suite_name"],
        "statistics": suite.get("statistics"),
        "meta": suite.get("meta"),
    }


def _rows_html(suite: dict[str, Any]) -> str:
    rows = []
    for r in suite["results"]:
        cfg = r["expectation_config"]
        ours = cfg.get("meta", {}).get("lakeforge", {})
        res = r.get("result") or {}
        exc = (r.get("exception_info") or {}).get("exception_message")
        status = "held" if r["success"] else ("raised" if exc else "failed")
        detail = exc or (
            f"{res.get('unexpected_count')} unexpected ({res.get('unexpected_percent', 0):.2f}%)"
            f", e.g. {res.get('partial_unexpected_list')}"
            if "unexpected_count" in res and res.get("unexpected_percent") is not None
            else f"observed {res.get('observed_value')}"
        )
        rows.append(
            f"<tr class='{status}'><td>{html.escape(str(ours.get('name')))}</td>"
            f"<td><code>{html.escape(cfg['type'])}</code></td>"
            f"<td>{html.escape(json.dumps(cfg['kwargs']))}</td>"
            f"<td>{html.escape(str(ours.get('action')))}</td><td>{status}</td>"
            f"<td>{html.escape(str(detail))}</td></tr>"
        )
    return "".join(rows)


STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "tr.failed td,tr.raised td{background:#fde2e2}tr.held td{background:#e6f4ea}"
)


def _fallback_page(table: str, suite: dict[str, Any], why: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(table)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(table)}</h1>"
        f"<p>(Great Expectations' renderer failed: {html.escape(why)})</p>"
        "<table><tr><th>name</th><th>type</th><th>kwargs</th><th>action</th><th>status</th>"
        f"<th>detail</th></tr>{_rows_html(suite)}</table></body></html>"
    )


def _write_index(folder: Path, run_id: str) -> None:
    sections = []
    for path in sorted(folder.glob("*.json")):
        suite = json.loads(path.read_text())
        stats = suite.get("statistics") or {}
        meta = suite.get("meta") or {}
        verdict = "all held" if suite.get("success") else "some failed"
        sections.append(
            f"<h2><a href='{html.escape(path.stem)}.html'>{html.escape(path.stem)}</a></h2>"
            f"<p>{stats.get('successful_expectations')}/{stats.get('evaluated_expectations')} "
            f"expectations held ({verdict}); table version {meta.get('table_version')}; "
            f"rows evaluated {meta.get('rows_evaluated')}, quarantined "
            f"{meta.get('rows_quarantined')}, dropped {meta.get('rows_dropped')}</p>"
            "<table><tr><th>name</th><th>type</th><th>kwargs</th><th>action</th>"
            f"<th>status</th><th>detail</th></tr>{_rows_html(suite)}</table>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>lakeforge quality - run {html.escape(run_id)}</title><style>{STYLE}</style>"
        f"</head><body><h1>Expectations - run {html.escape(run_id)}</h1>"
        + "".join(sections)
        + "</body></html>"
    )
    from lakeforge.redaction import redact

    (folder / "index.html").write_text(redact(page))


def result_rows(
    pipeline: str,
    run_id: str,
    table: str,
    version: int | None,
    results: list[ExpectationResult],
    data_env: str | None,
) -> list[tuple[Any, ...]]:
    """Rows for ``lakeforge.quality_results`` (column order of its DDL)."""
    now = datetime.now(UTC)
    out = []
    for r in results:
        e = r.expectation
        observed = None if r.observed_value is None else json.dumps(r.observed_value, default=str)
        out.append(
            (
                run_id,
                pipeline,
                table,
                version,
                e.suite,
                e.name,
                e.type,
                e.kwargs_json,
                str(e.action),
                e.level,
                data_env,
                r.success,
                r.element_count,
                r.unexpected_count,
                r.unexpected_percent,
                observed,
                list(r.sample),
                r.exception,
                now,
            )
        )
    return out
