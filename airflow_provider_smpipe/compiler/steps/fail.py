"""Fail step -> SDK ``FailStep``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.model.steps.fail import FailStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(FailStepSpec)
def build_fail(step: FailStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.mlops.workflow.fail_step import FailStep

    return FailStep(**builder.step_kwargs(step), error_message=builder.resolve(step.error_message))
