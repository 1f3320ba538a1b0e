"""A SageMaker training step as an Airflow task."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.training import TrainingStepSpec
from airflow_provider_smpipe.operators.base import (
    SageMakerPipelineStepOperator,
    environment_items,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_smpipe.model.references import Operand


class SageMakerTrainingStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker training job as one step of the group's pipeline (the SDK's ``ModelTrainer``).

    :param task_id: The task id; the step name is derived from it.
    :param image_uri: The training container image. (templated)
    :param entry_point: The training script, relative to ``source_dir`` when given, else to the DAG file.
    :param source_dir: A local directory uploaded with the script (relative to the DAG file).
    :param hyperparameters: Hyperparameters; references allowed. (templated)
    :param inputs: ``{channel: source}``; a source is an S3 URI, a parameter or another step's output, mounted at
        ``/opt/ml/input/data/<channel>``. (templated)
    :param instance_type: The instance type; a parameter is allowed. (templated)
    :param instance_count: The number of instances.
    :param volume_size_in_gb: The size of the ML storage volume.
    :param max_runtime_in_seconds: Stop the job after this long.
    :param environment: Environment variables of the job. (templated)
    :param output_path: Where ``model.tar.gz`` goes (default: the default bucket). (templated)
    :param use_spot_instances: Train on managed spot capacity (needs ``max_wait_in_seconds``).
    :param max_wait_in_seconds: How long to wait for spot capacity plus run time.
    :param checkpoint_s3_uri: Where checkpoints in ``/opt/ml/checkpoints`` are synced (spot interruptions
        resume from them). (templated)
    :param cache: ``True`` or an ISO 8601 duration such as ``"P30D"`` to cache the step.
    :param retry_policies: SageMaker retry policies as dicts.
    """

    supports_cache = True
    supported_retry_kinds = frozenset({"step", "job"})
    produces_model_artifacts = True

    template_fields: Sequence[str] = (
        "image_uri",
        "hyperparameters",
        "inputs",
        "environment",
        "output_path",
        "checkpoint_s3_uri",
        "instance_type",
    )

    def __init__(
        self,
        *,
        image_uri: str | Operand,
        entry_point: str,
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Operand] | None = None,
        inputs: Mapping[str, Operand] | None = None,
        instance_type: str | Operand = "ml.m5.large",
        instance_count: int = 1,
        volume_size_in_gb: int = 30,
        max_runtime_in_seconds: int | None = None,
        environment: Mapping[str, Operand] | None = None,
        output_path: str | Operand | None = None,
        use_spot_instances: bool = False,
        max_wait_in_seconds: int | None = None,
        checkpoint_s3_uri: str | Operand | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_uri = image_uri
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.hyperparameters = dict(hyperparameters) if hyperparameters is not None else {}
        self.inputs = dict(inputs) if inputs is not None else {}
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.volume_size_in_gb = volume_size_in_gb
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.environment = dict(environment) if environment is not None else None
        self.output_path = output_path
        self.use_spot_instances = use_spot_instances
        self.max_wait_in_seconds = max_wait_in_seconds
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self._check_arguments()

    def _check_arguments(self) -> None:
        where = f"task {self.task_id!r}"
        if not self.image_uri:
            raise PipelineDefinitionError(f"{where} field 'image_uri': an image URI is required")
        if not self.entry_point:
            raise PipelineDefinitionError(f"{where} field 'entry_point': a training script is required")
        if self.use_spot_instances and not self.max_wait_in_seconds:
            raise PipelineDefinitionError(
                f"{where} field 'max_wait_in_seconds': managed spot training needs a maximum wait "
                "(at least max_runtime_in_seconds)"
            )
        if (
            self.max_wait_in_seconds
            and self.max_runtime_in_seconds
            and self.max_wait_in_seconds < self.max_runtime_in_seconds
        ):
            raise PipelineDefinitionError(
                f"{where} field 'max_wait_in_seconds': must be at least max_runtime_in_seconds "
                f"({self.max_runtime_in_seconds})"
            )
        if self.max_wait_in_seconds and not self.use_spot_instances:
            raise PipelineDefinitionError(
                f"{where} field 'max_wait_in_seconds': only used with use_spot_instances=True"
            )
        for channel in self.inputs:
            if channel in {"code", "sm_drivers"}:
                raise PipelineDefinitionError(
                    f"{where} field 'inputs': channel name {channel!r} is reserved by the SageMaker SDK"
                )

    def reference_fields(self) -> Mapping[str, Any]:
        return {
            "image_uri": self.image_uri,
            "hyperparameters": self.hyperparameters,
            "inputs": self.inputs,
            "instance_type": self.instance_type,
            "environment": self.environment,
            "output_path": self.output_path,
            "checkpoint_s3_uri": self.checkpoint_s3_uri,
        }

    def _dag_folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.dag.fileloc)) if self.has_dag() else os.getcwd()

    def resolved_source(self) -> tuple[str | None, str]:
        """(source directory, entry script) resolved against the DAG file; without a source directory the
        entry script is an absolute path and is uploaded alone."""
        if self.source_dir is not None:
            source_dir = os.path.normpath(os.path.join(self._dag_folder(), self.source_dir))
            return source_dir, self.entry_point
        return None, os.path.normpath(os.path.join(self._dag_folder(), self.entry_point))

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> TrainingStepSpec:
        return TrainingStepSpec(**self.common_spec_fields(name, depends_on), **self.training_spec_fields())

    def training_spec_fields(self) -> dict[str, Any]:
        """The fields of :class:`TrainingStepSpec` that describe the training job, as keyword arguments
        (shared with the tuning step, whose trials are these training jobs)."""
        source_dir, entry_point = self.resolved_source()
        return dict(
            image_uri=self.image_uri,
            entry_point=entry_point,
            source_dir=source_dir,
            hyperparameters=tuple(sorted(self.hyperparameters.items())),
            inputs=tuple(self.inputs.items()),
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            volume_size_in_gb=self.volume_size_in_gb,
            max_runtime_in_seconds=self.max_runtime_in_seconds,
            environment=environment_items(self.task_id, self.environment),
            output_path=self.output_path,
            use_spot_instances=self.use_spot_instances,
            max_wait_in_seconds=self.max_wait_in_seconds,
            checkpoint_s3_uri=self.checkpoint_s3_uri,
        )
