"""Training step -> SDK ``TrainingStep`` over ``ModelTrainer.train()``.

:func:`model_trainer` and :func:`input_channels` describe the training job; the tuning step builds its trials'
training definition with them too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import MODEL_ARTIFACTS, STEP_BUILDERS, tree_hash
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.training import (
    DEFAULT_MAX_RUNTIME_IN_SECONDS,
    TrainingChannelSpec,
    TrainingStepSpec,
)

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder
    from airflow_provider_smpipe.model.references import ModelArtifactsRef


def max_runtime_of(step: TrainingStepSpec) -> int:
    """The job's ``MaxRuntimeInSeconds``: the operator's, else SageMaker's default of one day (with spot
    training never above the maximum wait, which SageMaker requires to be at least the run time)."""
    if step.max_runtime_in_seconds is not None:
        return step.max_runtime_in_seconds
    if step.max_wait_in_seconds is not None:
        return min(DEFAULT_MAX_RUNTIME_IN_SECONDS, step.max_wait_in_seconds)
    return DEFAULT_MAX_RUNTIME_IN_SECONDS


def source_code(step: TrainingStepSpec) -> Any:
    """The SDK ``SourceCode`` of the step's script (a lone script gets a directory of its own); None for an
    image-only job, whose image's own entrypoint runs."""
    from sagemaker.core.training.configs import SourceCode

    if not step.entry_point:
        return None
    script = os.path.join(step.source_dir or "", step.entry_point)
    if not os.path.isfile(script):
        raise PipelineDefinitionError(f"task {step.task_id!r} field 'entry_point': {script!r} does not exist")
    if step.source_dir is not None:
        return SourceCode(source_dir=step.source_dir, entry_script=step.entry_point)
    # A lone script is uploaded alone (not its whole folder), from a directory of its own whose path
    # depends only on the script (the SDK writes the path into sm_drivers/sourcecode.json).
    source_dir = os.path.join(tempfile.gettempdir(), "smpipe-code", tree_hash(script))
    os.makedirs(source_dir, exist_ok=True)
    shutil.copy2(script, source_dir)
    return SourceCode(source_dir=source_dir, entry_script=os.path.basename(script))


def model_trainer(step: TrainingStepSpec, builder: PipelineBuilder, source: Any | None = None) -> Any:
    """The SDK ``ModelTrainer`` of the step's training job (``source``: its ``SourceCode``, by default
    :func:`source_code`)."""
    from sagemaker.core.shapes import CheckpointConfig, OutputDataConfig
    from sagemaker.core.training.configs import Compute, StoppingCondition
    from sagemaker.train import ModelTrainer

    resolve = builder.resolve
    stopping: dict[str, Any] = {"max_runtime_in_seconds": max_runtime_of(step)}
    if step.max_wait_in_seconds is not None:
        stopping["max_wait_time_in_seconds"] = step.max_wait_in_seconds
    compute: dict[str, Any] = {
        "instance_type": resolve(step.instance_type),
        "instance_count": step.instance_count,
        "volume_size_in_gb": step.volume_size_in_gb,
    }
    if step.use_spot_instances:
        compute["enable_managed_spot_training"] = True
    if step.keep_alive_period_in_seconds is not None:
        compute["keep_alive_period_in_seconds"] = step.keep_alive_period_in_seconds
    kwargs: dict[str, Any] = {
        "training_image": resolve(step.image_uri),
        "role": builder.spec.role_arn,
        "sagemaker_session": builder.session,
        "base_job_name": step.name,
        "compute": Compute(**compute),
        # Always explicit: the SDK would otherwise write its own 3600 s, not SageMaker's default.
        "stopping_condition": StoppingCondition(**stopping),
        "hyperparameters": {k: resolve(v) for k, v in step.hyperparameters},
        "environment": {k: resolve(v) for k, v in step.environment},
    }
    source = source if source is not None else source_code(step)
    if source is not None:
        kwargs["source_code"] = source
    if step.output_path is not None:
        kwargs["output_data_config"] = OutputDataConfig(s3_output_path=resolve(step.output_path))
    if step.checkpoint_s3_uri is not None:
        checkpoint: dict[str, Any] = {"s3_uri": resolve(step.checkpoint_s3_uri)}
        if step.checkpoint_local_path is not None:
            checkpoint["local_path"] = step.checkpoint_local_path
        kwargs["checkpoint_config"] = CheckpointConfig(**checkpoint)
    return ModelTrainer(**kwargs)


def channel(channel: TrainingChannelSpec, builder: PipelineBuilder) -> Any:
    """A bare source as the SDK's ``InputData``; a channel with options as a ``Channel`` of its own."""
    from sagemaker.core.shapes import Channel, DataSource, S3DataSource
    from sagemaker.core.training.configs import InputData

    source = builder.resolve(channel.source)
    if channel.plain:
        return InputData(channel_name=channel.name, data_source=source)
    options: dict[str, Any] = {"input_mode": channel.input_mode}
    if channel.content_type is not None:
        options["content_type"] = channel.content_type
    if channel.compression is not None:
        options["compression_type"] = channel.compression
    return Channel(
        channel_name=channel.name,
        data_source=DataSource(
            s3_data_source=S3DataSource(
                s3_data_type="S3Prefix", s3_uri=source, s3_data_distribution_type=channel.distribution
            )
        ),
        **options,
    )


def input_channels(step: TrainingStepSpec, builder: PipelineBuilder) -> list[Any]:
    """The step's input channels as the SDK takes them."""
    return [channel(item, builder) for item in step.inputs]


@STEP_BUILDERS.register(TrainingStepSpec)
def build_training(step: TrainingStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.mlops.workflow.steps import TrainingStep

    trainer = model_trainer(step, builder)
    step_args = trainer.train(input_data_config=input_channels(step, builder) or None, wait=False)
    return TrainingStep(
        **builder.step_kwargs(step),
        step_args=step_args,
        cache_config=builder.cache_config(step),
        retry_policies=builder.retry_policies(step),
    )


@MODEL_ARTIFACTS.register(TrainingStepSpec)
def training_model_artifacts(
    step: TrainingStepSpec, reference: ModelArtifactsRef, builder: PipelineBuilder
) -> Any:
    """The training job's ``ModelArtifacts.S3ModelArtifacts``."""
    return builder.sdk_step(step.task_id).properties.ModelArtifacts.S3ModelArtifacts
