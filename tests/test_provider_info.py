"""The provider registers with Airflow: entry point, metadata, and every module and link it names imports."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from airflow_provider_smpipe import __version__
from airflow_provider_smpipe.get_provider_info import get_provider_info

if TYPE_CHECKING:
    from pathlib import Path


def test_entry_point_and_metadata() -> None:
    (entry,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider")
    ]
    info = entry.load()()
    assert info == get_provider_info()
    assert info["package-name"] == "airflow-provider-smpipe"
    assert info["versions"] == [__version__]
    modules = [
        m
        for kind in ("operators", "hooks", "triggers")
        for item in info[kind]
        for m in item["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    for link in info["extra-links"]:
        module, _, name = link.rpartition(".")
        assert hasattr(importlib.import_module(module), name), link


def test_airflow_providers_list_shows_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "plain"],
        capture_output=True,
        text=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "airflow-provider-smpipe" in result.stdout
