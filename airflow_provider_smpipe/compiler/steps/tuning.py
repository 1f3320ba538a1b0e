"""Tuning step -> SDK ``TuningStep`` over ``HyperparameterTuner.tune()`` of the training step's
``ModelTrainer``."""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.sdk import MODEL_ARTIFACTS, STEP_BUILDERS, tree_hash
from airflow_provider_smpipe.compiler.steps.training import input_channels, model_trainer, source_code
from airflow_provider_smpipe.model.steps.tuning import (
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    ParameterRange,
    TuningStepSpec,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder
    from airflow_provider_smpipe.model.references import ModelArtifactsRef


@STEP_BUILDERS.register(TuningStepSpec)
def build_tuning(step: TuningStepSpec, builder: PipelineBuilder) -> Any:
    from sagemaker.mlops.workflow.steps import TuningStep
    from sagemaker.train.configs import SourceCode
    from sagemaker.train.tuner import HyperparameterTuner

    resolve = builder.resolve
    local = source_code(step)
    # The tuner would upload the code under a timestamped key; a content-addressed archive keeps the
    # definition identical for identical code (and the trials read it as sagemaker_submit_directory).
    # Without a script (a built-in algorithm's image) the trials run the image's own entrypoint.
    archive = (
        SourceCode(
            source_dir=upload_source_archive(local.source_dir, builder), entry_script=local.entry_script
        )
        if local is not None
        else None
    )
    tuner = HyperparameterTuner(
        model_trainer=model_trainer(step, builder, archive),
        objective_metric_name=step.objective_metric_name,
        hyperparameter_ranges={
            name: _sdk_range(value, resolve) for name, value in step.hyperparameter_ranges
        },
        metric_definitions=[{"Name": d.name, "Regex": d.regex} for d in step.metric_definitions] or None,
        strategy=resolve(step.strategy),
        objective_type=resolve(step.objective_type),
        max_jobs=step.max_jobs,
        max_parallel_jobs=step.max_parallel_jobs,
        early_stopping_type=resolve(step.early_stopping),
        random_seed=step.random_seed,
    )
    step_args = tuner.tune(inputs=input_channels(step, builder) or None, wait=False)
    return TuningStep(
        **builder.step_kwargs(step),
        step_args=step_args,
        cache_config=builder.cache_config(step),
        retry_policies=builder.retry_policies(step),
    )


def _sdk_range(value: ParameterRange, resolve: Callable[[Any], Any]) -> Any:
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

    if isinstance(value, CategoricalRange):
        return CategoricalParameter([resolve(v) for v in value.values])
    cls = ContinuousParameter if isinstance(value, ContinuousRange) else IntegerParameter
    assert isinstance(value, ContinuousRange | IntegerRange)
    return cls(resolve(value.min_value), resolve(value.max_value), value.scaling)


def upload_source_archive(source_dir: str, builder: PipelineBuilder) -> str:
    """Upload ``source_dir`` as ``sourcedir.tar.gz`` under a key named by its content; return its S3 URI.

    The archive is byte-for-byte reproducible (sorted members, no timestamps or owners).
    """
    digest = tree_hash(source_dir)
    folder = os.path.join(tempfile.gettempdir(), "smpipe-code", f"{digest}-archive")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "sourcedir.tar.gz")
    if not os.path.isfile(path):
        partial = f"{path}.{os.getpid()}.tmp"
        with (
            open(partial, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as packed,
        ):
            with tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for root, dirs, names in os.walk(source_dir):
                    dirs.sort()
                    for name in sorted(names):
                        full = os.path.join(root, name)
                        info = tar.gettarinfo(full, arcname=os.path.relpath(full, source_dir))
                        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                        info.mode = 0o755 if os.access(full, os.X_OK) else 0o644
                        with open(full, "rb") as handle:
                            tar.addfile(info, handle)
        os.replace(partial, path)
    return str(builder.session.upload_data(path, builder.bucket, f"{builder.spec.name}/code/{digest}"))


@MODEL_ARTIFACTS.register(TuningStepSpec)
def tuning_model_artifacts(
    step: TuningStepSpec, reference: ModelArtifactsRef, builder: PipelineBuilder
) -> Any:
    """``<output path>/<rank-th best training job>/output/model.tar.gz``, as the SDK's
    ``TuningStep.get_top_model_s3_uri`` builds it."""
    from sagemaker.core.workflow.functions import Join

    sdk_step = builder.sdk_step(step.task_id)
    tuner = sdk_step.step_args.func_args[0]
    output = tuner.model_trainer.output_data_config.s3_output_path
    if isinstance(output, str):
        bucket, _, prefix = output.removeprefix("s3://").partition("/")
        return sdk_step.get_top_model_s3_uri(reference.rank, bucket, prefix.strip("/"))
    job_name = sdk_step.properties.TrainingJobSummaries[reference.rank].TrainingJobName
    return Join(on="/", values=[output, job_name, "output/model.tar.gz"])
