"""Secrets: resolved ``${env:}`` values are redacted in every output, and kept off command lines."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakeforge import redaction as secrets
from lakeforge.cli.main import cli
from lakeforge.config.interpolate import interpolate_string
from lakeforge.errors import Code, ConfigError
from lakeforge.plan.builder import build_plan
from lakeforge.plan.explain import plan_text
from lakeforge.plan.load import load_pipeline
from tests.helpers import MINIMAL_PIPELINE, make_project

PROFILE = """\
spark:
  master: local[1]
  conf:
    spark.hadoop.fs.s3a.secret.key: ${env:LF_TEST_SECRET}
    spark.sql.shuffle.partitions: 2
jar_bundles: []
"""
# The secret in a gold WHERE clause, and as a value of the wrong type (keys must be a list).
GOLD_SECRET = MINIMAL_PIPELINE.replace(
    "GROUP BY order_date",
    "WHERE 'x' <> '${env:LF_TEST_SECRET}'\n      GROUP BY order_date",
)
BAD_KEYS = MINIMAL_PIPELINE.replace("keys: [order_id]", "keys: ${env:LF_TEST_SECRET}")


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    secrets.clear()
    yield
    secrets.clear()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"sEcReT-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LF_TEST_SECRET", value)
    return value


def invoke(*args: str, cwd: Path) -> tuple[int, str, BaseException | None]:
    old = Path.cwd()
    try:
        os.chdir(cwd)
        res = CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(old)
    return res.exit_code, res.output, res.exception


def test_redact_replaces_every_registered_value_longest_first() -> None:
    secrets.register("abcd")
    secrets.register("abcdefgh")
    assert secrets.redact("x abcdefgh y abcd z") == "x *** y *** z"
    assert secrets.contains_secret("..abcd..")
    assert not secrets.contains_secret("abc")


def test_short_values_are_not_secrets() -> None:
    secrets.register("8")
    secrets.register("on")
    secrets.register("abc")
    assert secrets.redact("8 on abc") == "8 on abc"


def test_escaped_forms_are_redacted_too() -> None:
    value = 'pa"ss\\word'
    secrets.register(value)
    assert value not in secrets.redact(f"raw {value}")
    dumped = json.dumps({"k": value})
    assert secrets.redact(dumped) == '{"k": "***"}'
    assert secrets.redact(repr(value)) == "'***'"


def test_env_values_are_registered_vars_and_defaults_are_not() -> None:
    env = {"TOKEN": "tok-123456"}
    out = interpolate_string(
        "${env:TOKEN} ${var:bucket} ${env:UNSET:-fallback-default}", {"bucket": "my-bucket"}, env
    )
    assert out == "tok-123456 my-bucket fallback-default"
    assert secrets.is_registered("tok-123456")
    assert not secrets.contains_secret("my-bucket fallback-default")


def test_stream_redacts_a_secret_split_across_writes() -> None:
    secrets.register("split-secret")
    inner = io.StringIO()
    stream = secrets.RedactingStream(inner)
    stream.write("a split-")
    stream.write("secret b\nnext split-sec")
    assert inner.getvalue() == "a *** b\n"
    stream.write("ret")
    stream.flush()
    assert inner.getvalue() == "a *** b\nnext ***"


def test_plan_text_redacts_sql_even_where_it_is_cut(tmp_path: Path, secret: str) -> None:
    # The literal straddles the 100-character cut of the one-line SQL (it starts at 94).
    pad = "a" * 20
    text = MINIMAL_PIPELINE.replace(
        "GROUP BY order_date",
        f"WHERE '{pad}' <> '${{env:LF_TEST_SECRET}}'\n      GROUP BY order_date",
    )
    out = plan_text(build_plan(load_pipeline(make_project(tmp_path, text))))
    assert secret not in out and secret[:6] not in out
    assert "***" in out


def test_cli_plan_and_validate_print_no_secret(tmp_path: Path, secret: str) -> None:
    path = make_project(tmp_path, GOLD_SECRET, profiles={"local": PROFILE})
    outputs = []
    for args in (
        ("validate", str(path)),
        ("plan", str(path)),
        ("plan", "--format", "text", str(path)),
        ("plan", "--format", "json", str(path)),
    ):
        code, out, _ = invoke(*args, cwd=tmp_path)
        assert code == 0, out
        outputs.append(out)
    assert all(secret not in out for out in outputs)
    assert "***" in outputs[2]  # the gold SQL line, redacted
    json.loads(outputs[3])  # still valid JSON


def test_config_error_is_redacted_printed_and_reraised(tmp_path: Path, secret: str) -> None:
    path = make_project(tmp_path, BAD_KEYS)
    with pytest.raises(ConfigError) as raw:
        load_pipeline(path)
    assert secret in str(raw.value)  # the unredacted error does carry it: the test can fail

    code, out, _ = invoke("validate", str(path), cwd=tmp_path)
    assert code == 1 and Code.BAD_VALUE in out and secret not in out
    code, out, _ = invoke("plan", str(path), cwd=tmp_path)
    assert code == 1 and Code.BAD_VALUE in out and secret not in out
    code, _, exc = invoke("--debug", "plan", str(path), cwd=tmp_path)
    assert isinstance(exc, ConfigError) and exc.code == Code.BAD_VALUE
    assert secret not in str(exc) and secret not in repr(exc.args)


def test_api_errors_are_redacted(tmp_path: Path, secret: str) -> None:
    import lakeforge.api

    with pytest.raises(ConfigError) as err:
        lakeforge.api.plan(make_project(tmp_path, BAD_KEYS))
    assert secret not in str(err.value) and "***" in str(err.value)


def test_debug_traceback_of_the_real_cli_is_redacted(tmp_path: Path, secret: str) -> None:
    path = make_project(tmp_path, BAD_KEYS)
    proc = subprocess.run(
        [sys.executable, "-m", "lakeforge", "--debug", "plan", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and Code.BAD_VALUE in proc.stderr
    assert secret not in proc.stdout + proc.stderr


def test_submit_args_keep_secrets_in_a_private_properties_file(tmp_path: Path, secret: str) -> None:
    make_project(tmp_path, profiles={"local": PROFILE})
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        res = CliRunner().invoke(cli, ["submit-args"])
    finally:
        os.chdir(old)
    assert res.exit_code == 0, res.output
    args = res.output.splitlines()
    assert secret not in res.output
    assert "spark.sql.shuffle.partitions=2" in args  # a plain conf stays on the command line
    assert not any(a.startswith("spark.hadoop.fs.s3a.secret.key") for a in args)
    props = tmp_path / args[args.index("--properties-file") + 1]
    assert stat.S_IMODE(props.stat().st_mode) == 0o600
    assert stat.S_IMODE(props.parent.stat().st_mode) == 0o700
    assert f"spark.hadoop.fs.s3a.secret.key={secret}\n" in props.read_text()

    # Without a secret in the profile the file is removed and not passed.
    (tmp_path / "conf" / "local.yml").write_text("spark: {master: 'local[1]'}\njar_bundles: []\n")
    secrets.clear()
    os.chdir(tmp_path)
    try:
        res = CliRunner().invoke(cli, ["submit-args"])
    finally:
        os.chdir(old)
    assert res.exit_code == 0 and "--properties-file" not in res.output
    assert not props.exists()


def test_properties_file_escapes_what_java_would_misread(tmp_path: Path) -> None:
    path = secrets.write_private_properties(
        tmp_path / "p" / "x.properties", {"a key": " lead\\back\nline=x:y"}
    )
    assert path.read_text().splitlines()[1] == "a\\ key=\\ lead\\\\back\\nline=x:y"


def test_held_back_keeps_what_could_start_a_secret() -> None:
    secrets.register("tok-123456")
    assert secrets.held_back("abc tok-12") == len("abc ")
    assert secrets.held_back("abc t") == len("abc ")
    assert secrets.held_back("abc tok-123456") == len("abc tok-123456")  # whole: redact() masks it
    assert secrets.held_back("abc xyz") == len("abc xyz")


def test_first_secret_callback_runs_once_when_the_first_secret_arrives() -> None:
    calls: list[int] = []
    secrets.on_first_secret(lambda: calls.append(1))
    secrets.register("ab")  # too short: no secret
    assert calls == []
    secrets.register("first-secret")
    secrets.register("second-secret")
    assert calls == [1]
    secrets.on_first_secret(lambda: calls.append(2))  # there is one already: at once
    assert calls == [1, 2]


def test_pump_redacts_lines_and_the_safe_part_of_an_unfinished_one() -> None:
    from lakeforge.runtime.stderr_redact import pump

    secrets.register("tok-123456")
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    os.write(w_in, b"line tok-123456 one\nunfinished tok-12")
    os.write(w_in, b"3456 end")  # the secret's second half, then the end of input
    os.close(w_in)
    pump(r_in, w_out, idle_s=0.01)
    os.close(w_out)
    with os.fdopen(r_out, "rb") as f:
        assert f.read() == b"line *** one\nunfinished *** end"
    os.close(r_in)


# A process whose fd 2 is redirected through the redactor: Python writes to fd 2 directly
# (as the JVM does), a child process inheriting fd 2 writes too, then it exits with an error.
FD2_SCRIPT = """
import os, subprocess, sys
os.environ["LAKEFORGE_REDACT_STDERR"] = "1"
from lakeforge import redaction
from lakeforge.runtime import stderr_redact
stderr_redact.arm()
secret = os.environ["LF_TEST_SECRET"]
os.write(2, b"before any secret: plain\\n")
redaction.register(secret)  # installs the pipe on fd 2
os.write(2, ("direct " + secret + "\\n").encode())
subprocess.run(["sh", "-c", 'echo "child $LF_TEST_SECRET"; echo "no newline $LF_TEST_SECRET" >&2; printf "last %s" "$LF_TEST_SECRET" >&2'], stdout=2, check=True)
try:
    sys.exit(1)
finally:
    stderr_redact.stop()
"""


def test_fd2_redactor_masks_what_bypasses_python_and_loses_nothing(secret: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FD2_SCRIPT],
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "LF_TEST_SECRET": secret},
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert secret not in err
    assert err.splitlines() == [
        "before any secret: plain",
        "direct ***",
        "child ***",
        "no newline ***",
        "last ***",
    ]


def test_fd2_redactor_is_off_in_process_under_pytest() -> None:
    from lakeforge.runtime import stderr_redact

    stderr_redact.arm()
    secrets.register("some-secret-value")
    assert stderr_redact._installed is None


def test_redact_stream_masks_the_secrets_of_the_command_it_accompanies(
    tmp_path: Path, secret: str
) -> None:
    path = make_project(tmp_path, GOLD_SECRET)
    (tmp_path / "conf" / "local.yml").write_text("jar_bundles: []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lakeforge", "redact-stream", "--", "run", str(path)],
        cwd=tmp_path,
        input=f"ERROR Executor: WHERE 'x' <> '{secret}'\n".encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == "ERROR Executor: WHERE 'x' <> '***'\n"
