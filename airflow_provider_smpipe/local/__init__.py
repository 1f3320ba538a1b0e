"""Local SageMaker Pipelines backend (``smpipe-local``): moto plus pipeline executions that really run.

It imports neither Airflow nor the SageMaker SDK, so it starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.faults import FaultConfig
    from airflow_provider_smpipe.local.server import LocalBackend

__all__ = ["FaultConfig", "LocalBackend"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import airflow_provider_smpipe.local.cli --help` does not pay for moto.
    if name == "LocalBackend":
        from airflow_provider_smpipe.local.server import LocalBackend

        return LocalBackend
    if name == "FaultConfig":
        from airflow_provider_smpipe.local.faults import FaultConfig

        return FaultConfig
    raise AttributeError(name)
