"""SageMaker training script: fit a churn classifier and save it as ``model.joblib``.

Runs unchanged in the SageMaker scikit-learn container. Reads the ``train`` channel (and ``validation`` when
given) from ``/opt/ml/input/data/<channel>``, hyperparameters from ``/opt/ml/input/config/hyperparameters.json``
(SageMaker writes every value as a string) with ``SM_HP_<NAME>`` variables as a fallback, and writes the model to
``SM_MODEL_DIR`` (``/opt/ml/model``), which SageMaker packs into ``model.tar.gz``.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import joblib
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HYPERPARAMETERS_FILE = "/opt/ml/input/config/hyperparameters.json"
DEFAULTS: dict[str, Any] = {
    "algorithm": "gradient_boosting",
    "n_estimators": 150,
    "max_depth": 3,
    "learning_rate": 0.05,
    "c": 1.0,
    "seed": 42,
}


def _parse(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def hyperparameters() -> dict[str, Any]:
    found: dict[str, Any] = {}
    if os.path.exists(HYPERPARAMETERS_FILE):
        with open(HYPERPARAMETERS_FILE) as handle:
            found = {key: _parse(value) for key, value in json.load(handle).items()}
    for key in DEFAULTS:
        env_value = os.environ.get(f"SM_HP_{key.upper()}")
        if key not in found and env_value is not None:
            found[key] = _parse(env_value)
    return {**DEFAULTS, **{k: v for k, v in found.items() if k in DEFAULTS}}


def read_channel(name: str) -> pd.DataFrame | None:
    directory = os.environ.get(f"SM_CHANNEL_{name.upper()}", f"/opt/ml/input/data/{name}")
    files = sorted(glob.glob(os.path.join(directory, "**", "*.csv"), recursive=True))
    if not files:
        return None
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def build_model(hp: dict[str, Any]) -> Any:
    if hp["algorithm"] == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(C=float(hp["c"]), max_iter=1000))
    if hp["algorithm"] == "gradient_boosting":
        return GradientBoostingClassifier(
            n_estimators=int(hp["n_estimators"]),
            max_depth=int(hp["max_depth"]),
            learning_rate=float(hp["learning_rate"]),
            random_state=int(hp["seed"]),
        )
    raise SystemExit(f"unknown algorithm {hp['algorithm']!r} (gradient_boosting or logistic_regression)")


def main() -> None:
    hp = hyperparameters()
    print(f"hyperparameters: {json.dumps(hp, sort_keys=True)}")
    train = read_channel("train")
    if train is None:
        raise SystemExit("the train channel has no CSV files")
    label = train.columns[0]
    features = list(train.columns[1:])
    model = build_model(hp)
    model.fit(train[features], train[label])
    print(f"trained {hp['algorithm']} on {len(train)} rows, {len(features)} features")
    validation = read_channel("validation")
    if validation is not None:
        scores = model.predict_proba(validation[features])[:, 1]
        print(f"validation auc: {roc_auc_score(validation[label], scores):.4f}")
        print(f"validation accuracy: {accuracy_score(validation[label], scores >= 0.5):.4f}")
    model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(
        {"model": model, "features": features, "label": label}, os.path.join(model_dir, "model.joblib")
    )
    print(f"saved {os.path.join(model_dir, 'model.joblib')}")


if __name__ == "__main__":
    main()
