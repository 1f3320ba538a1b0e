"""SageMaker processing script: collect one day of (synthetic) web events into ``events/events.csv``.

``--date`` is the Airflow run's logical date; the same date always gives the same events, so a re-run of a
day reproduces it.
"""

from __future__ import annotations

import argparse
import csv
import os
import random

OUTPUT_DIR = "/opt/ml/processing/output/events"
PAGES = ["/", "/pricing", "/docs", "/signup", "/blog"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--date", required=True)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(args.date)
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    path = os.path.join(OUTPUT_DIR, "events.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "hour", "page", "duration_seconds"])
        for _ in range(args.events):
            writer.writerow(
                [args.date, rng.randint(0, 23), rng.choice(PAGES), round(rng.expovariate(1 / 40.0), 1)]
            )
    print(f"collected {args.events} events for {args.date} into {path}")


if __name__ == "__main__":
    main()
