"""Condition step -> SDK ``ConditionStep`` (its branch steps are built first)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.model.steps.condition import ConditionStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(ConditionStepSpec)
def build_condition(step: ConditionStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.mlops.workflow.condition_step import ConditionStep

    assert step.condition is not None
    return ConditionStep(
        **builder.step_kwargs(step),
        conditions=builder.condition(step.condition, top_level=True),
        if_steps=[builder.sdk_step(t) for t in step.if_steps],
        else_steps=[builder.sdk_step(t) for t in step.else_steps],
    )
