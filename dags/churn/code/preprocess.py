"""SageMaker processing script: clean the raw churn export, encode it, split train/validation/test.

Runs unchanged in the SageMaker scikit-learn container (``python3 preprocess.py``): it reads every CSV under
``/opt/ml/processing/input/raw`` and writes ``train/train.csv``, ``validation/validation.csv`` and
``test/test.csv`` under ``/opt/ml/processing/output``. The label (``churn`` as 0/1) is the first column and there
is a header row; the column order is also written to ``train/features.json`` for the later steps.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import pandas as pd
from sklearn.model_selection import train_test_split

INPUT_DIR = "/opt/ml/processing/input/raw"
OUTPUT_DIR = "/opt/ml/processing/output"
CATEGORICAL = ["contract", "internet_service", "payment_method"]
NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls"]
FLAGS = ["senior_citizen", "paperless_billing"]
LABEL = "churn"


def load(input_dir: str) -> pd.DataFrame:
    files = sorted(glob.glob(os.path.join(input_dir, "**", "*.csv"), recursive=True))
    if not files:
        raise SystemExit(f"no CSV files under {input_dir}")
    print(f"reading {len(files)} file(s): {', '.join(os.path.basename(f) for f in files)}")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.drop_duplicates().copy()
    print(f"dropped {len(raw) - len(frame)} duplicate rows")
    for column in [*CATEGORICAL, LABEL]:
        frame[column] = frame[column].astype(str).str.strip().str.lower()
    frame["total_charges"] = pd.to_numeric(frame["total_charges"], errors="coerce")
    missing = int(frame["total_charges"].isna().sum())
    # A blank total is a customer billed this month only: monthly charges times tenure is the best estimate.
    frame["total_charges"] = frame["total_charges"].fillna(frame["monthly_charges"] * frame["tenure_months"])
    print(f"filled {missing} blank total_charges")
    frame[LABEL] = (frame[LABEL] == "yes").astype(int)
    return frame


def encode(frame: pd.DataFrame) -> pd.DataFrame:
    encoded = pd.get_dummies(frame[CATEGORICAL], prefix=CATEGORICAL, dtype=int)
    features = pd.concat([frame[NUMERIC + FLAGS].astype(float), encoded], axis=1)
    return pd.concat([frame[[LABEL]], features], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    frame = encode(clean(load(INPUT_DIR)))
    holdout = args.validation_fraction + args.test_fraction
    train, rest = train_test_split(frame, test_size=holdout, random_state=args.seed, stratify=frame[LABEL])
    validation, test = train_test_split(
        rest, test_size=args.test_fraction / holdout, random_state=args.seed, stratify=rest[LABEL]
    )
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        os.makedirs(os.path.join(OUTPUT_DIR, name), exist_ok=True)
        part.to_csv(os.path.join(OUTPUT_DIR, name, f"{name}.csv"), index=False)
        print(f"{name}: {len(part)} rows, churn rate {part[LABEL].mean():.3f}")
    with open(os.path.join(OUTPUT_DIR, "train", "features.json"), "w") as handle:
        json.dump({"label": LABEL, "features": list(frame.columns[1:])}, handle, indent=2)
    print(f"preprocessing done: {frame.shape[1] - 1} features")


if __name__ == "__main__":
    main()
