"""spark-submit options for a profile: what ``spark-submit.sh`` and ``lakeforge serve`` pass.

Settings that hold a secret (a resolved ``${env:}`` value, a metastore password) never
reach a command line: they go to ``.lakeforge/secrets/submit-<env>.properties`` (mode
0600, rewritten on every call), passed as ``--properties-file``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lakeforge.redaction import split_secret, write_private_properties
from lakeforge.runtime.session import SessionSettings


def submit_options(settings: SessionSettings, root: Path, env: str) -> list[str]:
    """spark-submit's options for ``settings``, in order; writes the secrets' file."""
    conf = dict(settings.conf)
    if settings.master:
        conf["spark.master"] = settings.master
    if settings.jars:
        conf["spark.jars"] = ",".join(str(j) for j in settings.jars)
    public, private = split_secret(conf)
    out: list[str] = []
    if "spark.master" in public:
        out += ["--master", public.pop("spark.master")]
    if "spark.jars" in public:
        out += ["--jars", public.pop("spark.jars")]
    for key, value in public.items():
        out += ["--conf", f"{key}={value}"]
    props = root / ".lakeforge" / "secrets" / f"submit-{env}.properties"
    props.unlink(missing_ok=True)
    if private:
        written = write_private_properties(props, private)
        # Relative to where spark-submit runs: an absolute path may hold a secret too
        # (${env:HOME}) and would print as ***.
        out += ["--properties-file", os.path.relpath(written)]
    return out
