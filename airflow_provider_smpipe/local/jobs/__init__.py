"""Local SageMaker jobs: the machinery in :mod:`.base`, one module per job kind."""

from __future__ import annotations

from airflow_provider_smpipe.local.jobs.base import (
    JOB_KINDS,
    JobContext,
    JobKind,
    JobRun,
    JobSetupError,
    namespace_problem,
)

__all__ = ["JOB_KINDS", "JobContext", "JobKind", "JobRun", "JobSetupError", "namespace_problem"]
