"""Config side of expectations: expand suite files, check types, kwargs, actions and
columns, and name every problem with file, line and key. No Spark, no Great Expectations.

Suite files are Great Expectations 1.x suite JSON (``{"name", "expectations": [{"type",
"kwargs", "meta"}]}``). JSON is YAML, so they are read with the same line-tracking loader
as pipelines and an error inside one names the suite file's own line. lakeforge's settings
for an entry live in its ``meta.lakeforge`` (``action``, ``name``, ``environments``), so
the file stays a valid Great Expectations suite.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import IDENTIFIER, Action, ExpectationItem, Pipeline
from lakeforge.config.yaml_source import KeyPath, YamlDocument, load_yaml
from lakeforge.errors import Code, ConfigError, ConfigIssue
from lakeforge.quality.registry import KINDS, check_kwargs, columns_of
from lakeforge.quality.spec import Expectation, default_name

if TYPE_CHECKING:
    from lakeforge.plan.load import LoadedPipeline

Report = Callable[[YamlDocument, KeyPath, str, bool], None]  # doc, path, message, at value


def resolve_expectations(
    pipeline: Pipeline,
    pipeline_file: Path,
    doc: YamlDocument,
    issues: list[ConfigIssue],
    display: Callable[[Path], str],
) -> dict[str, tuple[Expectation, ...]]:
    """``silver.<name>`` -> its expectations, in declaration order (suite entries inline)."""

    def report(where: YamlDocument, path: KeyPath, message: str, at_value: bool) -> None:
        line = where.value_line_of(path) if at_value else where.line_of(path)
        dotted = ".".join(str(p) for p in path)
        issues.append(ConfigIssue(Code.BAD_EXPECTATION, where.file, line, dotted, message))

    out: dict[str, tuple[Expectation, ...]] = {}
    for name, table in pipeline.silver.items():
        declared = list(table.columns)
        resolved: list[Expectation] = []
        raw_items = _raw(doc.data, ("silver", name, "expectations"))
        for i, item in enumerate(table.expectations):
            base: KeyPath = ("silver", name, "expectations", i)
            raw = raw_items[i] if isinstance(raw_items, list) and i < len(raw_items) else {}
            if item.suite is not None:
                resolved += _from_suite(
                    item, pipeline_file, doc, base, declared, report, issues, display
                )
                continue
            assert item.type is not None
            kw_path: KeyPath = (
                (*base, item.type)
                if isinstance(raw, dict) and item.type in raw
                else (*base, "kwargs")
            )
            exp = _build(
                doc,
                base,
                kw_path,
                item.type,
                item.kwargs,
                action=item.action or Action.WARN,
                name=item.name,
                environments=tuple(item.environments),
                meta=item.meta,
                declared=declared,
                report=report,
                suite="inline",
            )
            if exp is not None:
                resolved.append(exp)
        out[f"silver.{name}"] = _unique_names(resolved, doc, ("silver", name), report)
    return out


def _raw(data: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _build(
    doc: YamlDocument,
    item_path: KeyPath,
    kwargs_path: KeyPath,
    type_: str,
    kwargs: Mapping[str, Any],
    *,
    action: Action,
    name: str | None,
    environments: tuple[str, ...],
    meta: Mapping[str, Any],
    declared: list[str],
    report: Report,
    suite: str,
) -> Expectation | None:
    if type_ not in KINDS:
        close = difflib.get_close_matches(type_, list(KINDS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        report(
            doc,
            kwargs_path,
            f"'{type_}' is not an expectation type lakeforge evaluates{hint}; "
            "`lakeforge expectations` lists the supported ones",
            False,
        )
        return None
    ok = True
    for problem in check_kwargs(type_, kwargs):
        path = (*kwargs_path, problem.key) if problem.key else kwargs_path
        report(doc, path, problem.message, problem.key is not None)
        ok = False
    for key, column in columns_of(type_, kwargs):
        if column not in declared:
            close = difflib.get_close_matches(column, declared, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            report(
                doc,
                (*kwargs_path, key),
                f"column '{column}' is not declared in this table's columns{hint}",
                True,
            )
            ok = False
    kind = KINDS[type_]
    if action not in kind.actions:
        report(
            doc,
            (*item_path, "action"),
            f"action '{action}' does not apply to {type_}, a table-level expectation "
            f"(use {' or '.join(kind.actions)})",
            True,
        )
        ok = False
    if not ok:
        return None
    return Expectation(
        name=name or default_name(type_, dict(kwargs)),
        type=type_,
        kwargs_json=json.dumps(dict(kwargs), sort_keys=True, default=str),
        action=action,
        environments=environments,
        origin=f"{doc.file}:{doc.line_of(item_path)}",
        suite=suite,
        meta_json=json.dumps(dict(meta), sort_keys=True, default=str),
    )


def _from_suite(
    item: ExpectationItem,
    pipeline_file: Path,
    doc: YamlDocument,
    base: KeyPath,
    declared: list[str],
    report: Report,
    issues: list[ConfigIssue],
    display: Callable[[Path], str],
) -> list[Expectation]:
    assert item.suite is not None
    path = (pipeline_file.parent / item.suite).resolve()
    if not path.is_file():
        issues.append(
            ConfigIssue(
                Code.FILE_NOT_FOUND,
                doc.file,
                doc.value_line_of((*base, "suite")),
                ".".join(str(p) for p in (*base, "suite")),
                f"expectation suite not found: {display(path)}",
            )
        )
        return []
    sdoc, parse_issues = load_yaml(path, display(path))
    issues.extend(parse_issues)
    if sdoc is None:
        return []
    data = sdoc.data
    # Values from a JSON parser (YAML 1.1 reads 1e-05 as a string), lines from sdoc; a
    # suite written as YAML keeps sdoc's values.
    with contextlib.suppress(ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
    entries = data.get("expectations") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        report(sdoc, (), "not a Great Expectations suite: no 'expectations' list", False)
        return []
    suite_name = str(data.get("name") or path.stem) if isinstance(data, dict) else path.stem
    out = []
    for j, entry in enumerate(entries):
        epath: KeyPath = ("expectations", j)
        if not isinstance(entry, dict):
            report(sdoc, epath, "an expectation is a mapping with type and kwargs", False)
            continue
        # Great Expectations 0.x wrote expectation_type; 1.x writes type.
        type_key = "type" if "type" in entry else "expectation_type"
        type_ = entry.get(type_key)
        kwargs = entry.get("kwargs") or {}
        meta = entry.get("meta") or {}
        if not isinstance(type_, str) or not isinstance(kwargs, dict) or not isinstance(meta, dict):
            report(sdoc, epath, "an expectation needs a string type and a kwargs mapping", False)
            continue
        ours = meta.get("lakeforge") or {}
        action = ours.get("action", item.action or Action.WARN) if isinstance(ours, dict) else None
        if action not in tuple(Action):
            report(
                sdoc, (*epath, "meta", "lakeforge", "action"), f"unknown action {action!r}", True
            )
            continue
        envs = ours.get("environments", item.environments) if isinstance(ours, dict) else []
        name = ours.get("name") if isinstance(ours, dict) else None
        if not isinstance(envs, list) or not all(
            isinstance(e, str) and IDENTIFIER.match(e) for e in envs
        ):
            report(sdoc, (*epath, "meta", "lakeforge"), "environments: a list of names", True)
            continue
        if name is not None and not (isinstance(name, str) and IDENTIFIER.match(name)):
            report(sdoc, (*epath, "meta", "lakeforge", "name"), "name: an identifier", True)
            continue
        exp = _build(
            sdoc,
            epath,
            (*epath, "kwargs"),
            type_,
            kwargs,
            action=Action(action),
            name=name,
            environments=tuple(envs),
            meta=meta,
            declared=declared,
            report=report,
            suite=suite_name,
        )
        if exp is not None:
            out.append(exp)
    return out


def _unique_names(
    items: list[Expectation], doc: YamlDocument, table_path: KeyPath, report: Report
) -> tuple[Expectation, ...]:
    """Generated names get ``_2``, ``_3``... on collision; two equal given names are an error."""
    import dataclasses

    seen: dict[str, int] = {}
    out = []
    for exp in items:
        n = seen.get(exp.name, 0) + 1
        seen[exp.name] = n
        if n > 1:
            if exp.name != default_name(exp.type, exp.kwargs):
                report(
                    doc,
                    (*table_path, "expectations"),
                    f"two expectations are named '{exp.name}' (at {exp.origin})",
                    False,
                )
                continue
            while f"{exp.name}_{n}" in seen:  # the suffixed name may be taken too
                n += 1
            exp = dataclasses.replace(exp, name=f"{exp.name}_{n}")
            seen[exp.name] = 1
        out.append(exp)
    return tuple(out)


def environments_named(expectations: Mapping[str, tuple[Expectation, ...]]) -> set[str]:
    return {e for exps in expectations.values() for x in exps for e in x.environments}


def check_data_env(loaded: LoadedPipeline, data_env: str | None) -> None:
    """A data environment must be one the pipeline's expectations name: a typo would
    otherwise skip every environment-bound expectation without a word.

    Raises:
        ConfigError: ``LF-CFG-010`` naming the environments that exist.
    """
    if data_env is None:
        return
    named = environments_named(loaded.expectations)
    if data_env not in named:
        known = ", ".join(sorted(named)) or "none"
        raise ConfigError(
            [
                ConfigIssue(
                    Code.BAD_EXPECTATION,
                    loaded.display,
                    0,
                    "--data-env",
                    f"data environment '{data_env}' is not named by any expectation "
                    f"(environments in this pipeline: {known})",
                )
            ]
        )
