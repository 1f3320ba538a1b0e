"""SageMaker processing script: publish an approved model to the "registry" S3 prefix with a model card.

Inputs: ``/opt/ml/processing/input/model/model.tar.gz`` and ``/opt/ml/processing/input/evaluation/
evaluation.json``. Output ``/opt/ml/processing/output/registry`` (uploaded by SageMaker to the registry prefix):
the model archive unchanged plus ``model_card.json`` describing where it came from and how well it scored.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil

INPUT_DIR = "/opt/ml/processing/input"
OUTPUT_DIR = "/opt/ml/processing/output/registry"


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-name", default="customer-churn")
    parser.add_argument("--model-uri", default="", help="where the model came from (for the card)")
    parser.add_argument("--min-auc", default="", help="the approval threshold (for the card)")
    args = parser.parse_args()

    archive = os.path.join(INPUT_DIR, "model", "model.tar.gz")
    with open(os.path.join(INPUT_DIR, "evaluation", "evaluation.json")) as handle:
        evaluation = json.load(handle)
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    shutil.copy2(archive, os.path.join(OUTPUT_DIR, "model.tar.gz"))
    card = {
        "model_name": args.model_name,
        "source_model_uri": args.model_uri,
        "model_sha256": sha256(archive),
        "approval": {"metric": "auc", "min_value": args.min_auc, "status": "Approved"},
        "metrics": evaluation.get("metrics", {}),
        # timezone.utc, not datetime.UTC: the SageMaker scikit-learn image runs Python 3.9.
        "registered_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),  # noqa: UP017
    }
    with open(os.path.join(OUTPUT_DIR, "model_card.json"), "w") as handle:
        json.dump(card, handle, indent=2)
    print(json.dumps(card, indent=2))
    print(f"registered {args.model_name} (auc {card['metrics'].get('auc', {}).get('value')})")


if __name__ == "__main__":
    main()
