"""Condition steps: the outcome is in the step state; nothing to follow."""

from __future__ import annotations

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime


class ConditionStepRuntime(StepKindRuntime):
    metadata_key = "Condition"


STEP_KINDS.add(ConditionStepRuntime.metadata_key, ConditionStepRuntime())
