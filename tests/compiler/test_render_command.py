"""The render command prints a group's definition without AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from compiler_support import FIXTURE_DAGS

if TYPE_CHECKING:
    from pathlib import Path


def test_render_prints_the_definition(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_smpipe",
            "render",
            str(FIXTURE_DAGS / "full_pipeline.py"),
            "ml",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    definition = json.loads(result.stdout)
    names = [step["Name"] for step in definition["Steps"]]
    assert names == ["prep", "train", "evaluate", "check"]
    check = definition["Steps"][-1]
    assert [s["Name"] for s in check["Arguments"]["IfSteps"]] == ["register"]
    assert [s["Name"] for s in check["Arguments"]["ElseSteps"]] == ["too_weak"]


def test_render_names_a_missing_group(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_smpipe",
            "render",
            str(FIXTURE_DAGS / "full_pipeline.py"),
            "nope",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        timeout=300,
        check=False,
    )
    assert result.returncode != 0 and "'nope'" in result.stderr
