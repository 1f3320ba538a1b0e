"""The package's public names: every one resolves lazily, and importing the package imports no operator."""

from __future__ import annotations

import subprocess
import sys

import airflow_provider_smpipe


def test_every_public_name_resolves() -> None:
    for name in airflow_provider_smpipe.__all__:
        assert getattr(airflow_provider_smpipe, name) is not None, name


def test_helpers_are_exported_at_the_top_level() -> None:
    for name in (
        "join",
        "execution_variable",
        "Parameter",
        "ProcessingInput",
        "TrainingInput",
        "CompileContext",
    ):
        assert name in airflow_provider_smpipe.__all__


def test_importing_the_package_imports_nothing_heavy() -> None:
    code = (
        "import sys, airflow_provider_smpipe; "
        "heavy = [m for m in sys.modules if m.startswith(('sagemaker', 'airflow_provider_smpipe.operators'))]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
