"""Train a scikit-learn classifier on the published iris training set; log it to MLflow.

    python jobs/iris/train.py                       # the newest publish of iris_species
    python jobs/iris/train.py --version 0 --tracking-uri file:./mlruns --experiment iris

Reads the set with ``lakeforge.training_set`` (the rows of one table version, one pandas
frame per split), fits on ``train``, scores ``validation`` and ``test``, and records on
one MLflow run: the training set (``lakeforge.log_to_mlflow``: manifest artifact, one
dataset input per split with its checksum as digest, the set id and every pinned input
version as tags), the model's parameters and the accuracy per split. Run from the
project root (it starts the ``--env`` profile's Spark session, like the CLI).

The default tracking store is ``./mlruns`` (MLflow's file store, which MLflow 3 only
opens with ``MLFLOW_ALLOW_FILE_STORE=true``: set here for ``file:`` URIs).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="iris_species", help="the training set's name")
    parser.add_argument("--version", type=int, default=None, help="default: the newest")
    parser.add_argument("--env", default="local", help="lakeforge profile (conf/<env>.yml)")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri(),
    )
    parser.add_argument("--experiment", default="iris")
    parser.add_argument("--json-result", type=Path, default=None, help="write a summary here")
    return parser.parse_args(argv)


def train(args: argparse.Namespace) -> dict[str, Any]:
    if args.tracking_uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import lakeforge

    # pyspark's toPandas tries Arrow first and warns that pyarrow is absent (not needed).
    warnings.filterwarnings("ignore", message=r".*Arrow optimization.*")
    manifest = lakeforge.training_manifest(args.name, args.version, env=args.env)
    frames = lakeforge.training_set(
        args.name, version=manifest["table_version"], pandas=True, env=args.env
    )
    features = manifest["columns"]["features"]
    (label,) = manifest["columns"]["labels"]
    train_frame = frames["train"]

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    params = {"model": "LogisticRegression", "C": 1.0, "max_iter": 1000}
    with mlflow.start_run(run_name=f"train on {manifest['id']}") as run:
        logged = lakeforge.log_to_mlflow(manifest, run=run)
        model = make_pipeline(
            SimpleImputer(strategy="median"),
            StandardScaler(),
            LogisticRegression(C=params["C"], max_iter=params["max_iter"]),
        )
        model.fit(train_frame[features], train_frame[label])
        mlflow.log_params(params | {"features": ",".join(features), "label": label})
        metrics: dict[str, float] = {}
        for split, frame in frames.items():
            mlflow.log_metric(f"{split}_rows", len(frame))
            if len(frame):
                acc = float(accuracy_score(frame[label], model.predict(frame[features])))
                metrics[f"{split}_accuracy"] = acc
        mlflow.log_metrics(metrics)

    summary = {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "tracking_uri": args.tracking_uri,
        "training_set": manifest["id"],
        "inputs": {i["table"]: i["version"] for i in manifest["inputs"]},
        "rows": {s: len(f) for s, f in frames.items()},
        "metrics": metrics,
        "tags": logged.tags,
    }
    return summary


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    summary = train(args)
    inputs = ", ".join(f"{t}@{v}" for t, v in summary["inputs"].items())
    print(f"trained on {summary['training_set']} (inputs {inputs})")
    for name, value in summary["metrics"].items():
        print(f"  {name}: {value:.3f}")
    print(f"mlflow run {summary['run_id']} in {summary['tracking_uri']}")
    if args.json_result is not None:
        args.json_result.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
