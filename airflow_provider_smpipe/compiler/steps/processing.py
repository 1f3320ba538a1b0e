"""Processing step -> SDK ``ProcessingStep`` over ``ScriptProcessor.run()`` / ``Processor.run()``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.processing import ProcessingStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(ProcessingStepSpec)
def build_processing(step: ProcessingStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.core.processing import Processor, ScriptProcessor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    resolve = builder.resolve
    common: dict[str, Any] = {
        "role": builder.spec.role_arn,
        "image_uri": resolve(step.image_uri),
        "instance_type": resolve(step.instance_type),
        "instance_count": resolve(step.instance_count),
        "volume_size_in_gb": resolve(step.volume_size_in_gb),
        "max_runtime_in_seconds": resolve(step.max_runtime_in_seconds),
        "env": {k: resolve(v) for k, v in step.environment} or None,
        "sagemaker_session": builder.session,
    }
    inputs = [
        ProcessingInput(
            input_name=item.name,
            s3_input=ProcessingS3Input(
                s3_uri=resolve(item.source),
                local_path=item.local_path,
                s3_data_type="S3Prefix",
                s3_input_mode=item.s3_input_mode,
                **(
                    {"s3_data_distribution_type": item.s3_data_distribution_type}
                    if item.s3_data_distribution_type
                    else {}
                ),
            ),
        )
        for item in step.inputs
    ]
    outputs = [
        ProcessingOutput(
            output_name=item.name,
            s3_output=ProcessingS3Output(
                s3_uri=resolve(item.destination)
                if item.destination is not None
                else builder.default_output_uri(step, item.name),
                local_path=item.local_path,
                s3_upload_mode=item.s3_upload_mode,
            ),
        )
        for item in step.outputs
    ]
    arguments = [resolve(a) for a in step.arguments] or None
    if step.code is not None:
        if not step.code.startswith("s3://") and not os.path.isfile(step.code):
            raise PipelineDefinitionError(
                f"task {step.task_id!r} field 'code': script {step.code!r} does not exist"
            )
        processor = ScriptProcessor(command=list(step.command or ()), **common)
        step_args = processor.run(code=step.code, inputs=inputs, outputs=outputs, arguments=arguments)
    else:
        processor = Processor(entrypoint=[resolve(e) for e in step.entrypoint or ()], **common)
        step_args = processor.run(inputs=inputs, outputs=outputs, arguments=arguments)
    property_files = []
    for item in step.property_files:
        property_file = PropertyFile(name=item.name, output_name=item.output_name, path=item.path)
        builder.property_files[(step.task_id, item.name)] = property_file
        property_files.append(property_file)
    return ProcessingStep(
        **builder.step_kwargs(step),
        step_args=step_args,
        property_files=property_files or None,
        cache_config=builder.cache_config(step),
        retry_policies=builder.retry_policies(step),
    )
