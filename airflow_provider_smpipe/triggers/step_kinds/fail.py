"""Fail steps: the message is the step's failure reason; nothing to follow."""

from __future__ import annotations

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime


class FailStepRuntime(StepKindRuntime):
    metadata_key = "Fail"


STEP_KINDS.add(FailStepRuntime.metadata_key, FailStepRuntime())
