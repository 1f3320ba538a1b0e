"""Benchmark: parsing a DAG with a 50-step pipeline group vs the same DAG with 50 EmptyOperators.

Each measurement runs in a fresh interpreter (imports included, as the DAG processor pays them) and parses the
file N times in-process after that (the steady-state cost). Run: ``.venv/bin/python bench/parse_time.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

STEPS = 50
REPEATS = 5
PARSES = 20

PIPELINE_DAG = f"""
from __future__ import annotations
import pendulum
from airflow.sdk import DAG
from airflow_provider_smpipe import SageMakerPipelineTaskGroup, SageMakerProcessingStepOperator

with DAG("bench_pipeline", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
    with SageMakerPipelineTaskGroup("ml", role_arn="arn:aws:iam::123456789012:role/r", parameters={{"X": 1}}) as g:
        previous = None
        for index in range({STEPS}):
            step = SageMakerProcessingStepOperator(
                task_id=f"step_{{index}}",
                image_uri="image",
                entrypoint=["python3", "-c", "print(1)"],
                inputs={{"data": previous.output_uri("out")}} if previous is not None else {{}},
                outputs=["out"],
                environment={{"X": g.parameter("X")}},
            )
            previous = step
"""

EMPTY_DAG = f"""
from __future__ import annotations
import pendulum
from airflow.sdk import DAG, TaskGroup
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("bench_empty", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
    with TaskGroup("ml"):
        previous = None
        for index in range({STEPS}):
            step = EmptyOperator(task_id=f"step_{{index}}")
            if previous is not None:
                previous >> step
            previous = step
"""

PROBE = textwrap.dedent(
    """
    import json, sys, time, tracemalloc
    from airflow.dag_processing.dagbag import DagBag
    tracemalloc.start()
    start = time.perf_counter()
    DagBag(sys.argv[1])
    first = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    times = []
    for _ in range(int(sys.argv[2])):
        start = time.perf_counter()
        DagBag(sys.argv[1])
        times.append(time.perf_counter() - start)
    heavy = any(m == "sagemaker" or m.startswith("sagemaker.") for m in sys.modules)
    print(json.dumps({"first": first, "steady": sorted(times)[len(times) // 2], "peak_mb": peak / 2**20,
                      "sagemaker_imported": heavy}))
    """
)


def measure(dag_source: str, folder: Path, name: str) -> dict[str, float]:
    path = folder / f"{name}.py"
    path.write_text(dag_source)
    runs = []
    for _ in range(REPEATS):
        out = (
            subprocess.run(
                [sys.executable, "-c", PROBE, str(path), str(PARSES)],
                capture_output=True,
                text=True,
                check=True,
                env={"AIRFLOW_HOME": str(folder), "PATH": "/usr/bin:/bin"},
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        runs.append(json.loads(out))
    return {
        "first_parse_s": statistics.median(r["first"] for r in runs),
        "steady_parse_ms": 1000 * statistics.median(r["steady"] for r in runs),
        "peak_traced_mb": statistics.median(r["peak_mb"] for r in runs),
        "sagemaker_imported": any(r["sagemaker_imported"] for r in runs),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {
            f"{STEPS} EmptyOperators": measure(EMPTY_DAG, folder, "bench_empty"),
            f"{STEPS}-step pipeline group": measure(PIPELINE_DAG, folder, "bench_pipeline"),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
