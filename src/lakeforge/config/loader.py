"""Load a pipeline file and its environment profile into typed, checked models.

Config only: parse, validate the models, interpolate ``${env:}`` / ``${var:}`` (registering
secrets), guard gold SQL, check roots and table references. All problems are collected,
each with file, line and key path (:func:`collect_pipeline_config`), and raised together
as one :class:`ConfigError` (:func:`load_pipeline_config`). Expectations are resolved
against the quality registry above this package, in :mod:`lakeforge.plan.load`. Nothing
here imports pyspark or the quality engine: this is what ``validate`` runs.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lakeforge.config import models
from lakeforge.config.interpolate import interpolate_tree
from lakeforge.config.models import LAYERS, Pipeline, Profile
from lakeforge.config.references import sql_table_refs
from lakeforge.config.roots import is_inside, resolve_roots
from lakeforge.config.sql_guard import QUERY_HINT, query_problem
from lakeforge.config.uris import correct_s3_schemes
from lakeforge.config.yaml_source import KeyPath, YamlDocument, load_yaml
from lakeforge.errors import Code, ConfigError, ConfigIssue

M = TypeVar("M", bound=BaseModel)

SYSTEM_SCHEMA = "lakeforge"
DEFAULT_ENV = "local"


@dataclass(frozen=True)
class PipelineConfig:
    """A pipeline with its profile layered on, checked as config (no expectations resolved).

    ``config_hash`` covers the pipeline file, the profile file and the gold SQL;
    :class:`lakeforge.plan.load.LoadedPipeline` adds the resolved expectations to it.
    """

    pipeline: Pipeline
    profile: Profile
    env: str
    file: Path
    display: str
    project_root: Path
    doc: YamlDocument = field(repr=False, compare=False)
    profile_file: Path | None
    config_hash: str
    gold_sql: Mapping[str, str]

    def line_of(self, *path: str | int) -> int:
        return self.doc.line_of(tuple(path))


def display_path(path: Path) -> str:
    """How files are named in errors: relative to the working directory when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` that has a ``conf/`` folder."""
    for candidate in [start, *start.parents]:
        if (candidate / "conf").is_dir():
            return candidate
    return None


def _all_field_names() -> set[str]:
    names: set[str] = set()
    for obj in vars(models).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            for fname, finfo in obj.model_fields.items():
                names.add(finfo.alias or fname)
    return names


def _issues_from_validation(exc: ValidationError, doc: YamlDocument) -> list[ConfigIssue]:
    """Map pydantic errors to located issues (loc -> key path -> line)."""
    issues = []
    known = _all_field_names()
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p != "[key]")
        dotted = ".".join(str(p) for p in loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            hint = difflib.get_close_matches(key, known, n=1)
            msg = f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            issues.append(ConfigIssue(Code.UNKNOWN_KEY, doc.file, doc.line_of(loc), dotted, msg))
        elif kind == models.CREDENTIAL_IN_YAML:
            at = (*loc, str(err.get("ctx", {}).get("key", "")))
            issues.append(
                ConfigIssue(
                    Code.BAD_VALUE, doc.file, doc.line_of(at), ".".join(map(str, at)), err["msg"]
                )
            )
        elif kind == "missing":
            msg = f"missing required key '{loc[-1]}'" if loc else "missing required key"
            issues.append(
                ConfigIssue(Code.MISSING_KEY, doc.file, doc.line_of(loc[:-1]), dotted, msg)
            )
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error") and "input" in err:
                shown = repr(err["input"])
                msg += f" (got {shown if len(shown) < 60 else shown[:57] + '...'})"
            issues.append(
                ConfigIssue(Code.BAD_VALUE, doc.file, doc.value_line_of(loc), dotted, msg)
            )
    return issues


def _validate(model: type[M], data: Any, doc: YamlDocument, issues: list[ConfigIssue]) -> M | None:
    if not isinstance(data, dict):
        issues.append(
            ConfigIssue(
                Code.BAD_VALUE,
                doc.file,
                doc.line_of(()),
                "",
                f"expected a mapping at the top level, got {type(data).__name__}",
            )
        )
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issues_from_validation(exc, doc))
        return None


def _where(doc: YamlDocument, path: KeyPath) -> str:
    return f"{doc.file}:{doc.value_line_of(path)} [{'.'.join(map(str, path))}]"


def load_profile(
    env: str,
    project_root: Path | None,
    conf_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Profile, Path | None]:
    """Load ``conf/<env>.yml``; the built-in defaults stand in for a missing ``local``.

    Raises:
        ConfigError: the profile is missing (and not ``local``) or invalid.
    """
    folder = conf_dir or (project_root / "conf" if project_root else None)
    path = folder / f"{env}.yml" if folder else None
    if path is None or not path.is_file():
        if env == DEFAULT_ENV:
            return Profile(), None
        available = (
            sorted(p.stem for p in folder.glob("*.yml")) if folder and folder.is_dir() else []
        )
        where = display_path(path) if path else f"conf/{env}.yml"
        raise ConfigError(
            [
                ConfigIssue(
                    Code.PROFILE_NOT_FOUND,
                    where,
                    0,
                    "",
                    f"no environment profile '{env}'"
                    + (f"; available: {', '.join(available)}" if available else ""),
                )
            ]
        )
    doc, issues = load_yaml(path, display_path(path))
    profile = None
    if doc is not None:

        def err(p: KeyPath, msg: str) -> None:
            issues.append(
                ConfigIssue(
                    Code.UNRESOLVED_VARIABLE,
                    doc.file,
                    doc.value_line_of(p),
                    ".".join(map(str, p)),
                    msg,
                )
            )

        raw = doc.data if doc.data is not None else {}
        # A profile's own values may use ${env:...} (cluster URLs, buckets) but not ${var:...}.
        data = interpolate_tree(raw, {}, err, environ)
        data, _ = correct_s3_schemes(data, lambda p: _where(doc, p))
        profile = _validate(Profile, data, doc, issues)
    if issues or profile is None:
        raise ConfigError(issues)
    return profile, path


def config_digest(
    file: Path,
    profile_file: Path | None,
    gold_sql: Mapping[str, str],
    extra: Iterable[bytes] = (),
) -> str:
    """The config hash: pipeline file, profile file, gold SQL, then ``extra`` in order."""
    digest = hashlib.sha256()
    digest.update(file.read_bytes())
    if profile_file is not None:
        digest.update(profile_file.read_bytes())
    for name in sorted(gold_sql):
        digest.update(name.encode() + b"\0" + gold_sql[name].encode())
    for part in extra:
        digest.update(part)
    return digest.hexdigest()[:16]


def collect_pipeline_config(
    path: str | Path,
    env: str = DEFAULT_ENV,
    conf_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[PipelineConfig | None, YamlDocument | None, list[ConfigIssue]]:
    """Parse, interpolate, validate and cross-check a pipeline file, raising nothing.

    Args:
        path: the pipeline YAML.
        env: name of the profile in ``conf/`` to layer on top.
        conf_dir: explicit profile folder (default: ``conf/`` of the project root).
        environ: environment for ``${env:...}`` (default: ``os.environ``).

    Returns:
        The config (None when the file, the profile or the models did not load), the
        parsed pipeline document (None when it did not parse) and every config issue
        found, in the order found. A config is returned even with issues, so a caller
        can check more (expectations) and report everything together.
    """
    file = Path(path).resolve()
    display = display_path(file)
    issues: list[ConfigIssue] = []
    doc, parse_issues = load_yaml(file, display)
    issues.extend(parse_issues)
    project_root = find_project_root(file.parent) or find_project_root(Path.cwd()) or file.parent
    env_conf = conf_dir or (
        Path(os.environ["LAKEFORGE_CONF_DIR"]) if "LAKEFORGE_CONF_DIR" in os.environ else None
    )
    try:
        profile, profile_file = load_profile(env, project_root, env_conf, environ)
    except ConfigError as exc:
        issues.extend(exc.issues)
        profile, profile_file = None, None
    if doc is None or profile is None:
        return None, doc, issues

    raw = doc.data if doc.data is not None else {}
    variables: dict[str, str] = {}
    if isinstance(raw, dict) and isinstance(raw.get("vars"), dict):
        variables.update({str(k): str(v) for k, v in raw["vars"].items()})
    variables.update(profile.vars)

    def err(p: KeyPath, msg: str) -> None:
        issues.append(
            ConfigIssue(
                Code.UNRESOLVED_VARIABLE, doc.file, doc.value_line_of(p), ".".join(map(str, p)), msg
            )
        )

    data = interpolate_tree(raw, variables, err, environ)
    data, _ = correct_s3_schemes(data, lambda p: _where(doc, p))
    pipeline = _validate(Pipeline, data, doc, issues)
    if pipeline is None:
        return None, doc, issues
    roots = resolve_roots(project_root, profile.allowed_roots)
    issues.extend(check_source_paths(pipeline, project_root, roots, doc))
    gold_sql = _read_sql_files(pipeline, file, doc, issues, roots)
    issues.extend(check_gold_queries(pipeline, gold_sql, doc))
    issues.extend(check_references(pipeline, gold_sql, doc))
    config = PipelineConfig(
        pipeline=pipeline,
        profile=profile,
        env=env,
        file=file,
        display=display,
        project_root=project_root,
        doc=doc,
        profile_file=profile_file,
        config_hash=config_digest(file, profile_file, gold_sql),
        gold_sql=gold_sql,
    )
    return config, doc, issues


def load_pipeline_config(
    path: str | Path,
    env: str = DEFAULT_ENV,
    conf_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> PipelineConfig:
    """:func:`collect_pipeline_config`, raising on any issue; expectations are not
    resolved (for that, and for planning, use :func:`lakeforge.plan.load.load_pipeline`).

    Raises:
        ConfigError: every config problem found, located.
    """
    config, _, issues = collect_pipeline_config(path, env, conf_dir, environ)
    if issues or config is None:
        raise ConfigError(issues)
    return config


def _outside(path: str, roots: tuple[str, ...], what: str) -> str:
    """The message for a path outside the roots: names the path, never its content."""
    return (
        f"{what} '{path}' is outside the allowed roots ({', '.join(roots)}); "
        "move it inside the project or add its folder to allowed_roots in the profile"
    )


def check_source_paths(
    pipeline: Pipeline, project_root: Path, roots: tuple[str, ...], doc: YamlDocument
) -> list[ConfigIssue]:
    """Every bronze source path (interpolated) resolves, symlinks followed, inside ``roots``.

    Relative paths are from the project root, as the ingest step reads them. A URI
    (``s3a://...``) is allowed only under a URI root listed in ``allowed_roots``.
    """
    issues = []
    for name, table in pipeline.bronze.items():
        path = table.source.path
        if not is_inside(path, roots, base=project_root):
            key: KeyPath = ("bronze", name, "source", "path")
            issues.append(
                ConfigIssue(
                    Code.PATH_OUTSIDE_ROOTS,
                    doc.file,
                    doc.value_line_of(key),
                    ".".join(map(str, key)),
                    _outside(path, roots, "source path"),
                )
            )
    return issues


def _read_sql_files(
    pipeline: Pipeline,
    file: Path,
    doc: YamlDocument,
    issues: list[ConfigIssue],
    roots: tuple[str, ...],
) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, table in pipeline.gold.items():
        if table.sql is not None:
            out[name] = table.sql
            continue
        if table.python is not None:
            continue
        assert table.sql_file is not None
        key: KeyPath = ("gold", name, "sql_file")

        def issue(code: str, msg: str, key: KeyPath = key) -> None:
            issues.append(
                ConfigIssue(code, doc.file, doc.value_line_of(key), ".".join(map(str, key)), msg)
            )

        # Checked before anything is opened: a file outside the roots is never read.
        if "://" in table.sql_file or table.sql_file.startswith("file:"):
            issue(Code.PATH_OUTSIDE_ROOTS, f"sql_file '{table.sql_file}' must be a local path")
            continue
        if not is_inside(table.sql_file, roots, base=file.parent):
            issue(Code.PATH_OUTSIDE_ROOTS, _outside(table.sql_file, roots, "sql_file"))
            continue
        sql_path = (file.parent / table.sql_file).resolve()
        try:
            out[name] = sql_path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            issue(
                Code.NOT_UTF8,
                f"SQL file {display_path(sql_path)} is not valid UTF-8 (byte {exc.start})",
            )
        except OSError:
            issue(Code.FILE_NOT_FOUND, f"SQL file not found: {display_path(sql_path)}")
    return out


def check_gold_queries(
    pipeline: Pipeline, gold_sql: Mapping[str, str], doc: YamlDocument
) -> list[ConfigIssue]:
    """Each gold ``sql`` / ``sql_file`` is one read-only query (see :mod:`config.sql_guard`)."""
    issues = []
    for name, sql in gold_sql.items():
        field_name = "sql" if pipeline.gold[name].sql is not None else "sql_file"
        key: KeyPath = ("gold", name, field_name)
        try:
            problem = query_problem(sql)
        except ValueError as exc:  # a malformed table@... reference
            code, msg = Code.BAD_VALUE, str(exc)
        else:
            if problem is None:
                continue
            code, msg = Code.GOLD_NOT_A_QUERY, f"{QUERY_HINT}; this is {problem}"
        issues.append(ConfigIssue(code, doc.file, doc.line_of(key), ".".join(map(str, key)), msg))
    return issues


def defined_tables(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    """Every table the pipeline defines: ``layer.name`` -> (layer, name)."""
    out = {}
    for layer in LAYERS:
        for name in getattr(pipeline, layer):
            out[f"{layer}.{name}"] = (layer, name)
    return out


def check_references(
    pipeline: Pipeline, gold_sql: Mapping[str, str], doc: YamlDocument
) -> list[ConfigIssue]:
    """Every table a step reads must be defined in this pipeline (or be a system table)."""
    tables = defined_tables(pipeline)
    issues = []

    def check(ref: str, key: KeyPath, line: int) -> None:
        from lakeforge.config.table_refs import parse_table_ref

        ref = ref.strip().lower()
        if "@" in ref:
            try:
                ref = parse_table_ref(ref).name
            except ValueError as exc:
                issues.append(
                    ConfigIssue(Code.BAD_VALUE, doc.file, line, ".".join(map(str, key)), str(exc))
                )
                return
        if ref.startswith(SYSTEM_SCHEMA + "."):
            return
        if ref not in tables:
            close = difflib.get_close_matches(ref, list(tables), n=1)
            msg = f"reference to undefined table '{ref}'" + (
                f" (did you mean '{close[0]}'?)" if close else ""
            )
            if "." not in ref:
                msg = f"table reference '{ref}' must be qualified as layer.table (bronze, silver or gold)"
            issues.append(
                ConfigIssue(Code.UNDEFINED_TABLE, doc.file, line, ".".join(map(str, key)), msg)
            )

    for name, silver in pipeline.silver.items():
        key: KeyPath = ("silver", name, "from")
        check(silver.from_, key, doc.value_line_of(key))
    for name, gold in pipeline.gold.items():
        for i, dep in enumerate(gold.depends_on):
            key = ("gold", name, "depends_on", i)
            check(dep, key, doc.line_of(key))
        if gold.sql is not None:
            key = ("gold", name, "sql")
            base = doc.value_line_of(key)
            for ref in sql_table_refs(gold.sql):
                check(ref.name, key, base + ref.line_offset)
        elif gold.python is not None:
            pass  # inputs are its depends_on, checked above
        elif name in gold_sql:
            for ref in sql_table_refs(gold_sql[name]):
                check(
                    ref.name,
                    ("gold", name, "sql_file"),
                    doc.value_line_of(("gold", name, "sql_file")),
                )
    return issues
