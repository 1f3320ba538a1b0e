"""``python -m airflow_provider_smpipe.demo up`` leaves a working stack behind; ``down`` stops all of it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from airflow_provider_smpipe.demo.stack import free_port, process_start_ticks

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def _demo(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_smpipe.demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_up_then_down(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    port = free_port()
    up = _demo("up", "--no-trigger", "--home", str(home), "--port", str(port))
    state_file = home / "stack.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"processes": {}}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Airflow UI: http://127.0.0.1:{port}" in up.stdout
        assert set(state["processes"]) == {
            "smpipe-local",
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
        }
        health = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=10).json()
        assert health["scheduler"]["status"] == "healthy"
        assert _demo("up", "--no-trigger", "--home", str(home)).returncode == 1  # refuses to start twice
    finally:
        down = _demo("down", "--home", str(home))
    assert down.returncode == 0, down.stdout + down.stderr
    assert not state_file.exists()
    still_running = [
        name for name, p in state["processes"].items() if process_start_ticks(p["pid"]) == p["start_ticks"]
    ]
    assert still_running == []
