"""Generate the abalone data set of the example (``data/abalone-dataset.csv``) once, deterministically.

The layout is the UCI abalone data AWS's SageMaker Pipelines example reads: no header; sex (M/F/I), length,
diameter, height, whole, shucked, viscera and shell weights, and the ring count to predict. The values follow the
real data's shape (sizes grow with age, weights with size, infants are small) with noise, so a regressor learns
rings but not perfectly. Run ``python dags/abalone/generate_data.py`` to rebuild the committed CSV; the same seed
gives the same bytes (the standard library's ``random`` only).
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

SEED = 20261130
ROWS = 4177
OUTPUT = Path(__file__).parent / "data" / "abalone-dataset.csv"


def _row(rng: random.Random) -> list[object]:
    sex = rng.choices(["M", "F", "I"], weights=[0.37, 0.31, 0.32])[0]
    rings = max(1, min(29, round(rng.gammavariate(9.0, 1.1) if sex != "I" else rng.gammavariate(5.5, 1.3))))
    growth = 1 - math.exp(-rings / 6.0)
    length = max(0.075, min(0.815, 0.12 + 0.55 * growth + rng.gauss(0, 0.035)))
    diameter = max(0.055, length * 0.79 + rng.gauss(0, 0.012))
    height = max(0.01, length * 0.27 + rng.gauss(0, 0.012))
    whole = max(0.002, 2.8 * length**3 * (1 + rng.gauss(0, 0.08)))
    shucked = whole * max(0.2, 0.43 + rng.gauss(0, 0.04))
    viscera = whole * max(0.1, 0.22 + rng.gauss(0, 0.02))
    shell = whole * max(0.1, 0.29 + 0.004 * rings + rng.gauss(0, 0.03))
    values = [length, diameter, height, whole, shucked, viscera, shell]
    return [sex, *(f"{value:.4f}" for value in values), rings]


def main() -> None:
    rng = random.Random(SEED)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with OUTPUT.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for _ in range(ROWS):
            writer.writerow(_row(rng))


if __name__ == "__main__":
    main()
