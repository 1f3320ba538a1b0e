"""SageMaker processing script: score the trained model on the test split and write ``evaluation.json``.

Inputs: ``/opt/ml/processing/input/model/model.tar.gz`` (the training step's artifacts) and
``/opt/ml/processing/input/test/test.csv``. Output: ``/opt/ml/processing/output/evaluation/evaluation.json`` in
the shape SageMaker model quality reports use, e.g. ``{"metrics": {"auc": {"value": 0.87}, ...}}``; the
pipeline's condition step reads ``metrics.auc.value`` from it.
"""

from __future__ import annotations

import glob
import json
import os
import tarfile

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

MODEL_DIR = "/opt/ml/processing/input/model"
TEST_DIR = "/opt/ml/processing/input/test"
OUTPUT_DIR = "/opt/ml/processing/output/evaluation"


def load_model() -> dict:
    archive = os.path.join(MODEL_DIR, "model.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(MODEL_DIR)
    return joblib.load(os.path.join(MODEL_DIR, "model.joblib"))


def main() -> None:
    bundle = load_model()
    model, features, label = bundle["model"], bundle["features"], bundle["label"]
    files = sorted(glob.glob(os.path.join(TEST_DIR, "**", "*.csv"), recursive=True))
    test = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    scores = model.predict_proba(test[features])[:, 1]
    predicted = scores >= 0.5
    metrics = {
        "auc": roc_auc_score(test[label], scores),
        "accuracy": accuracy_score(test[label], predicted),
        "precision": precision_score(test[label], predicted, zero_division=0),
        "recall": recall_score(test[label], predicted, zero_division=0),
        "f1": f1_score(test[label], predicted, zero_division=0),
    }
    report = {
        "metrics": {name: {"value": round(float(value), 4)} for name, value in metrics.items()},
        "test_rows": len(test),
    }
    for name, value in metrics.items():
        print(f"test {name}: {value:.4f}")
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    with open(os.path.join(OUTPUT_DIR, "evaluation.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"wrote {os.path.join(OUTPUT_DIR, 'evaluation.json')}")


if __name__ == "__main__":
    main()
