"""Generate the demo's customer churn data set (``data/churn.csv``) once, deterministically.

Run ``python dags/churn/generate_data.py`` to rebuild the committed CSV; the same seed gives the same bytes (the
standard library's ``random`` only, so the result does not depend on numpy or pandas versions). Churn follows a
logistic model of the features plus noise, so a classifier can learn it but not perfectly, and a few rows carry
the defects real exports have (blank totals, stray whitespace and case, duplicated rows) for the preprocessing
step to clean.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

SEED = 20260101
ROWS = 3000
OUTPUT = Path(__file__).parent / "data" / "churn.csv"

CONTRACTS = ["month-to-month", "one-year", "two-year"]
INTERNET = ["dsl", "fiber", "none"]
PAYMENTS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
COLUMNS = [
    "customer_id",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",
    "internet_service",
    "payment_method",
    "support_calls",
    "senior_citizen",
    "paperless_billing",
    "churn",
]


def _number(row: dict[str, object], key: str) -> float:
    return float(str(row[key]))


def churn_probability(row: dict[str, object], rng: random.Random) -> float:
    score = -1.1
    score += {"month-to-month": 1.3, "one-year": -0.2, "two-year": -1.4}[str(row["contract"])]
    score += {"fiber": 0.7, "dsl": -0.1, "none": -0.8}[str(row["internet_service"])]
    score += 0.6 if row["payment_method"] == "electronic-check" else 0.0
    score -= 0.045 * _number(row, "tenure_months")
    score += 0.018 * (_number(row, "monthly_charges") - 65.0)
    score += 0.35 * _number(row, "support_calls")
    score += 0.4 * _number(row, "senior_citizen")
    score += 0.25 * _number(row, "paperless_billing")
    score += rng.gauss(0.0, 0.8)
    return 1.0 / (1.0 + math.exp(-score))


def generate(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for index in range(ROWS):
        contract = rng.choices(CONTRACTS, weights=[55, 25, 20])[0]
        internet = rng.choices(INTERNET, weights=[35, 45, 20])[0]
        tenure = rng.randint(0, 72) if contract == "month-to-month" else rng.randint(6, 72)
        base = {"dsl": 50.0, "fiber": 80.0, "none": 22.0}[internet]
        monthly = round(max(18.0, rng.gauss(base, 12.0)), 2)
        row: dict[str, object] = {
            "customer_id": f"C{index + 1:05d}",
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": round(monthly * tenure * rng.uniform(0.95, 1.05), 2),
            "contract": contract,
            "internet_service": internet,
            "payment_method": rng.choice(PAYMENTS),
            "support_calls": min(9, int(rng.expovariate(0.7))),
            "senior_citizen": int(rng.random() < 0.16),
            "paperless_billing": int(rng.random() < 0.6),
        }
        row["churn"] = "yes" if rng.random() < churn_probability(row, rng) else "no"
        # Defects the preprocessing step cleans up.
        if rng.random() < 0.02:
            row["total_charges"] = ""
        if rng.random() < 0.03:
            row["contract"] = f" {str(row['contract']).upper()} "
        rows.append(row)
    for duplicate in rng.sample(range(ROWS), 15):
        rows.append(dict(rows[duplicate]))
    return rows


def main() -> None:
    rows = generate(random.Random(SEED))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with OUTPUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    churned = sum(1 for row in rows if row["churn"] == "yes")
    print(f"wrote {len(rows)} rows ({churned} churned) to {OUTPUT}")


if __name__ == "__main__":
    main()
