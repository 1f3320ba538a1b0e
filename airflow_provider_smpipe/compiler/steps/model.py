"""Model step -> SDK ``ModelStep`` over ``ModelBuilder.build()`` (CreateModel)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.model_container import container_arguments, quiet_model_builder
from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.model.steps.model import ModelStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(ModelStepSpec)
def build_model(step: ModelStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.core.training.configs import Networking
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    kwargs = container_arguments(
        step.task_id, step.image_uri, step.model_data, step.environment, step.inference_code, builder
    )
    if step.subnets:
        kwargs["network"] = Networking(
            subnets=list(step.subnets), security_group_ids=list(step.security_group_ids)
        )
    with quiet_model_builder():
        model = ModelBuilder(role_arn=step.execution_role_arn or builder.spec.role_arn, **kwargs)
        step_args = model.build()
    return ModelStep(
        **builder.step_kwargs(step),
        step_args=step_args,
        retry_policies=builder.retry_policies(step),
    )
