"""``airflow dags test`` (what DAG authors use to try a DAG) runs the group end to end against the local backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_smpipe.local import LocalBackend

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).parents[1] / "fixtures" / "e2e_dags"


def test_dags_test_runs_every_step_and_prints_its_logs(tmp_path: Path) -> None:
    with LocalBackend(port=0, state_dir=tmp_path / "backend") as backend:
        s3 = backend.client("s3")
        s3.create_bucket(Bucket="smpipe-e2e")
        s3.put_object(Bucket="smpipe-e2e", Key="raw/data.txt", Body=b"\n".join(b"%d" % i for i in range(30)))
        connection = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": backend.endpoint_url, "region_name": "us-east-1"},
        }
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))},
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        }
        airflow = [sys.executable, "-m", "airflow"]
        subprocess.run([*airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
        result = subprocess.run(
            [*airflow, "dags", "test", "e2e_pipeline"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    output = result.stdout + result.stderr
    (Path("test-artifacts") / "e2e").mkdir(parents=True, exist_ok=True)
    (Path("test-artifacts") / "e2e" / "dags_test.log").write_text(output)
    assert result.returncode == 0, output[-4000:]
    assert "state=success" in output
    for line in [
        "prepare: wrote 30 rows",
        "train: model written",
        "evaluate: accuracy 0.8",
        "publish: model s3://",
    ]:
        assert line in output, line
    assert "step reject skipped" in output
