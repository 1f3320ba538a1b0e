"""Callback step -> SDK ``CallbackStep``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.model.steps.callback import CallbackStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(CallbackStepSpec)
def build_callback(step: CallbackStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.mlops.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep

    # The SDK's enum metaclass maps any call to the default member: look members up by value.
    types = {member.value: member for member in CallbackOutputTypeEnum}
    return CallbackStep(
        **builder.step_kwargs(step),
        sqs_queue_url=step.sqs_queue_url,
        inputs={name: builder.resolve(value) for name, value in step.inputs},
        outputs=[CallbackOutput(output_name=name, output_type=types[kind]) for name, kind in step.outputs],
    )
