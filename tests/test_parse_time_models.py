"""A DAG with model and register-model steps parses without the SageMaker SDK or an AWS client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_parse_time import PROBE

DAG_FILE = Path(__file__).parent / "fixtures" / "dags" / "model_registry_pipeline.py"


def test_model_registry_dag_parses_cheaply(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAG_FILE)],
        capture_output=True,
        text=True,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout, result.stdout
    assert "CLIENTS []" in result.stdout, result.stdout
