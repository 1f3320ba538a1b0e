"""Transform step -> SDK ``TransformStep`` over ``Transformer.transform()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.model.steps.transform import TransformStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(TransformStepSpec)
def build_transform(step: TransformStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.core.transformer import Transformer
    from sagemaker.mlops.workflow.steps import TransformStep

    resolve = builder.resolve
    output_path = (
        resolve(step.output_path)
        if step.output_path is not None
        else builder.default_output_uri(step, "output")
    )
    transformer = Transformer(
        model_name=resolve(step.model_name),
        instance_count=resolve(step.instance_count),
        instance_type=resolve(step.instance_type),
        strategy=resolve(step.batch_strategy),
        assemble_with=resolve(step.assemble_with),
        output_path=output_path,
        accept=resolve(step.accept),
        max_concurrent_transforms=resolve(step.max_concurrent_transforms),
        max_payload=resolve(step.max_payload_in_mb),
        env={k: resolve(v) for k, v in step.environment} or None,
        # A base name keeps the SDK from describing the model to derive one (a call to SageMaker); the
        # pipeline names the job itself anyway.
        base_transform_job_name=step.name,
        sagemaker_session=builder.session,
    )
    step_args = transformer.transform(
        data=resolve(step.data),
        data_type=step.data_type,
        content_type=resolve(step.content_type),
        compression_type=resolve(step.compression_type),
        split_type=resolve(step.split_type),
        input_filter=resolve(step.input_filter),
        output_filter=resolve(step.output_filter),
        join_source=resolve(step.join_source),
    )
    return TransformStep(
        **builder.step_kwargs(step),
        step_args=step_args,
        cache_config=builder.cache_config(step),
        retry_policies=builder.retry_policies(step),
    )
