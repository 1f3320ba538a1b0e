"""Register-model step -> SDK ``ModelStep`` over ``ModelBuilder.register()`` (CreateModelPackage)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.model_container import container_arguments, quiet_model_builder
from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.model.steps.register_model import RegisterModelStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder

#: ``model_metrics`` keys -> the SDK ``ModelMetrics`` arguments.
_SDK_METRICS = {
    "model_quality_statistics": "model_statistics",
    "model_quality_constraints": "model_constraints",
    "model_data_statistics": "model_data_statistics",
    "model_data_constraints": "model_data_constraints",
    "bias_report": "bias",
    "bias_pre_training_report": "bias_pre_training",
    "bias_post_training_report": "bias_post_training",
    "explainability_report": "explainability",
}


@STEP_BUILDERS.register(RegisterModelStepSpec)
def build_register_model(step: RegisterModelStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    resolve = builder.resolve
    kwargs = container_arguments(
        step.task_id, step.image_uri, step.model_data, step.environment, step.inference_code, builder
    )
    metrics = {
        _SDK_METRICS[key]: MetricsSource(content_type=source.content_type, s3_uri=resolve(source.s3_uri))
        for key, source in step.model_metrics
    }
    with quiet_model_builder():
        # dependencies=None: no empty script-mode variables (SAGEMAKER_PROGRAM="") in a container without
        # code, the state ModelBuilder.build() leaves a builder in before register() (the SDK's documented flow).
        model = ModelBuilder(role_arn=builder.spec.role_arn, dependencies=None, **kwargs)
        step_args = model.register(
            model_package_group_name=resolve(step.model_package_group_name),
            content_types=list(step.content_types) or None,
            response_types=list(step.response_types) or None,
            inference_instances=list(step.inference_instances) or None,
            transform_instances=list(step.transform_instances) or None,
            model_metrics=ModelMetrics(**metrics) if metrics else None,
            approval_status=resolve(step.approval_status),
            description=step.model_package_description,
            customer_metadata_properties={k: resolve(v) for k, v in step.customer_metadata} or None,
            domain=resolve(step.domain),
            task=resolve(step.task),
        )
    return ModelStep(
        **builder.step_kwargs(step),
        step_args=step_args,
        retry_policies=builder.retry_policies(step),
    )
