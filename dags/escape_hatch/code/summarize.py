"""SageMaker processing script: summarize a day of events per page into ``summary/summary.json``."""

from __future__ import annotations

import argparse
import glob
import json
import os

import pandas as pd

INPUT_DIR = "/opt/ml/processing/input/events"
OUTPUT_DIR = "/opt/ml/processing/output/summary"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--title", default="Daily events")
    args = parser.parse_args()
    files = sorted(glob.glob(os.path.join(INPUT_DIR, "**", "*.csv"), recursive=True))
    events = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    per_page = events.groupby("page")["duration_seconds"].agg(["count", "mean"]).round(1)
    print(f"{args.title}: {len(events)} events")
    print(per_page.to_string())
    summary = {
        "title": args.title,
        "events": len(events),
        "pages": {
            page: {"views": int(row["count"]), "mean_seconds": float(row["mean"])}
            for page, row in per_page.iterrows()
        },
    }
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    with open(os.path.join(OUTPUT_DIR, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
