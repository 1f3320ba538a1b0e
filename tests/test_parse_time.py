"""DAG parsing stays cheap: no SageMaker SDK import, no AWS client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DAG_FILES = [*sorted((ROOT / "dags").glob("*.py")), ROOT / "tests" / "fixtures" / "dags" / "full_pipeline.py"]

PROBE = """
import importlib.util, sys, botocore.client
created = []
original = botocore.client.BaseClient.__init__
def spy(self, *args, **kwargs):
    created.append(type(self).__name__)
    original(self, *args, **kwargs)
botocore.client.BaseClient.__init__ = spy
spec = importlib.util.spec_from_file_location("probe_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
heavy = sorted(m for m in sys.modules if m == "sagemaker" or m.startswith("sagemaker."))
print("HEAVY", heavy[:5])
print("CLIENTS", created)
"""


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parsing_does_not_import_the_sdk_or_create_clients(dag_file: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout, result.stdout
    assert "CLIENTS []" in result.stdout, result.stdout
