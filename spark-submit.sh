#!/usr/bin/env bash
# Run any lakeforge command through spark-submit, e.g.
#
#   ./spark-submit.sh run jobs/retail/pipeline.yml                       # local master
#   ./spark-submit.sh --env cluster --master spark://host:7077 run jobs/retail/pipeline.yml
#   ./spark-submit.sh --conf spark.executor.memory=4g run jobs/retail/pipeline.yml
#
# Options before the lakeforge command: --env NAME (profile in conf/, default local) and
# any spark-submit option (--master, --conf K=V, --deploy-mode, --driver-memory, ...),
# which win over the profile's. The profile's master, warehouse, metastore and confs come
# from `lakeforge submit-args`; the package is shipped to executors as a zip
# (--py-files) and the cached Delta jars with --jars. Settings that hold a secret (a
# resolved ${env:NAME}) never reach this command line: submit-args writes them to a
# properties file only you can read (.lakeforge/secrets/, mode 0600) and passes it as
# --properties-file (spark-submit then skips spark-defaults.conf; the profile is the config).
# The JVM's stderr is piped through `lakeforge redact-stream`, which prints secrets as ***.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
ENV_NAME="${LAKEFORGE_ENV:-local}"
USER_ARGS=()

# spark-submit options that take no value.
FLAGS=" --verbose --supervise --kill --status --version "
while [ $# -gt 0 ]; do
  case "$1" in
    --env) ENV_NAME="$2"; shift 2 ;;
    --env=*) ENV_NAME="${1#--env=}"; shift ;;
    --) shift; break ;;
    --*=*) USER_ARGS+=("$1"); shift ;;
    --*)
      if [[ "$FLAGS" == *" $1 "* ]]; then USER_ARGS+=("$1"); shift
      else USER_ARGS+=("$1" "$2"); shift 2; fi ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

if [ ! -x "$VENV/bin/lakeforge" ]; then
  "$ROOT/dev" setup
fi

# Ship the package to executors as a zip built from the working tree (always fresh).
DIST="$ROOT/.lakeforge/dist"
mkdir -p "$DIST"
# Built beside and renamed into place: two submits at once never read a half-written zip.
(cd "$ROOT/src" && "$VENV/bin/python" - <<'PY'
import os, pathlib, zipfile
out = pathlib.Path("../.lakeforge/dist/lakeforge.zip")
tmp = out.with_name(f"lakeforge.zip.{os.getpid()}")
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(pathlib.Path("lakeforge").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            z.write(p)
os.replace(tmp, out)
PY
)

# Profiles and relative paths resolve from where you stand, exactly as with `lakeforge`.
PROFILE_TEXT="$("$VENV/bin/lakeforge" submit-args --env "$ENV_NAME")"  # fails loudly (set -e)
mapfile -t PROFILE_ARGS <<< "$PROFILE_TEXT"

export LAKEFORGE_ENV="$ENV_NAME"
# spark-submit finds Spark through the venv's pyspark, not whatever python3 is on PATH.
SPARK_HOME="$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
export PATH="$VENV/bin:$PATH"
# The JVM's stderr (log4j, stack traces) goes through `lakeforge redact-stream`, which masks
# the secrets this command resolves (profile and pipeline files, from the same environment).
exec "$VENV/bin/spark-submit" \
  --name "lakeforge" \
  "${PROFILE_ARGS[@]}" \
  --conf "spark.pyspark.python=$VENV/bin/python" \
  --conf "spark.pyspark.driver.python=$VENV/bin/python" \
  --py-files "$DIST/lakeforge.zip" \
  "${USER_ARGS[@]}" \
  "$ROOT/src/lakeforge/__main__.py" "$@" \
  2> >("$VENV/bin/lakeforge" redact-stream --env "$ENV_NAME" -- "$@" >&2)
