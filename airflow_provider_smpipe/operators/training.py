"""A SageMaker training step as an Airflow task."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.checks import (
    check_environment,
    check_hyperparameters,
    check_image_uri,
    check_instance_type,
    check_s3_uri,
    local_path,
)
from airflow_provider_smpipe.model.steps.training import (
    RESERVED_CHANNELS,
    TRAINING_COMPRESSIONS,
    TRAINING_DISTRIBUTIONS,
    TRAINING_INPUT_MODES,
    TrainingChannelSpec,
    TrainingInput,
    TrainingStepSpec,
)
from airflow_provider_smpipe.operators.base import (
    SageMakerPipelineStepOperator,
    environment_items,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_smpipe.model.references import Operand

_CHANNEL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
#: ``ResourceConfig.KeepAlivePeriodInSeconds`` bounds.
_MAX_KEEP_ALIVE_SECONDS = 3600
#: ``CreateTrainingJob``'s environment limits.
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_VALUE_CHARS = 512


class SageMakerTrainingStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker training job as one step of the group's pipeline (the SDK's ``ModelTrainer``).

    With ``entry_point`` the script runs in ``image_uri`` as the SDK's ``ModelTrainer`` runs it. Without it the
    job is image-only: the image's own entrypoint runs (SageMaker's built-in algorithms such as XGBoost), with
    the hyperparameters and channels given.

    :param task_id: The task id; the step name is derived from it.
    :param image_uri: The training container image. (templated)
    :param entry_point: The training script, relative to ``source_dir`` when given, else to the DAG file;
        omit it for an image-only job.
    :param source_dir: A local directory uploaded with the script (relative to the DAG file). Paths are checked to
        exist when the DAG is parsed; a relative path may not leave the DAG file's folder, nor the script
        ``source_dir``.
    :param hyperparameters: Hyperparameters; references allowed. (templated)
    :param inputs: ``{channel: source}``; a source is an S3 URI, a parameter or another step's output, mounted at
        ``/opt/ml/input/data/<channel>``; or a :class:`~airflow_provider_smpipe.TrainingInput` with the channel's
        content type, input mode (``"File"``, ``"Pipe"``, ``"FastFile"``), distribution and compression.
        (templated)
    :param instance_type: The instance type; a parameter is allowed. (templated)
    :param instance_count: The number of instances (hosts ``algo-1`` ... ``algo-<n>``).
    :param volume_size_in_gb: The size of the ML storage volume.
    :param max_runtime_in_seconds: Stop the job after this long (default: SageMaker's, one day; with spot
        training and a shorter ``max_wait_in_seconds``, that wait).
    :param environment: Environment variables of the job; values are strings or references (SageMaker takes strings
        only: a number, boolean or None is refused, not converted). (templated)
    :param output_path: Where ``model.tar.gz`` goes (default: the default bucket). (templated)
    :param use_spot_instances: Train on managed spot capacity (needs ``max_wait_in_seconds``).
    :param max_wait_in_seconds: How long to wait for spot capacity plus run time.
    :param checkpoint_s3_uri: Where checkpoints in ``/opt/ml/checkpoints`` are synced (spot interruptions
        resume from them). (templated)
    :param checkpoint_local_path: The container directory of the checkpoints (default ``/opt/ml/checkpoints``).
    :param keep_alive_period_in_seconds: Keep the instances in a warm pool this long after the job (0-3600) for
        the next job with the same configuration.
    :param cache: ``True`` or an ISO 8601 duration such as ``"P30D"`` to cache the step.
    :param retry_policies: SageMaker retry policies as dicts.
    """

    supports_cache = True
    supported_retry_kinds = frozenset({"step", "job"})
    produces_model_artifacts = True
    property_shapes: ClassVar[tuple[str, ...] | None] = ("DescribeTrainingJobResponse",)

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
        entry_point: str | None = None,
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Operand] | None = None,
        inputs: Mapping[str, Operand | TrainingInput] | None = None,
        instance_type: str | Operand = "ml.m5.large",
        instance_count: int = 1,
        volume_size_in_gb: int = 30,
        max_runtime_in_seconds: int | None = None,
        environment: Mapping[str, Operand] | None = None,
        output_path: str | Operand | None = None,
        use_spot_instances: bool = False,
        max_wait_in_seconds: int | None = None,
        checkpoint_s3_uri: str | Operand | None = None,
        checkpoint_local_path: str | None = None,
        keep_alive_period_in_seconds: int | None = None,
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
        self.checkpoint_local_path = checkpoint_local_path
        self.keep_alive_period_in_seconds = keep_alive_period_in_seconds
        self._check_arguments()

    def _check_arguments(self) -> None:
        where = f"task {self.task_id!r}"
        check_image_uri(where, "image_uri", self.image_uri)
        check_instance_type(where, "instance_type", self.instance_type)
        check_hyperparameters(where, "hyperparameters", self.hyperparameters)
        check_environment(
            where,
            "environment",
            self.environment,
            max_entries=MAX_ENVIRONMENT_ENTRIES,
            max_value_chars=MAX_ENVIRONMENT_VALUE_CHARS,
        )
        check_s3_uri(where, "output_path", self.output_path, what="output")
        check_s3_uri(where, "checkpoint_s3_uri", self.checkpoint_s3_uri, what="output")
        if self.entry_point is not None and not self.entry_point:
            raise PipelineDefinitionError(
                f"{where} field 'entry_point': give a training script, or leave it out for an image-only job"
            )
        if self.source_dir is not None and not self.entry_point:
            raise PipelineDefinitionError(
                f"{where} field 'source_dir': only used with 'entry_point' (the script in that directory)"
            )
        self._check_positive("instance_count", self.instance_count)
        self._check_positive("volume_size_in_gb", self.volume_size_in_gb)
        if self.max_runtime_in_seconds is not None:
            self._check_positive("max_runtime_in_seconds", self.max_runtime_in_seconds)
        if self.use_spot_instances and not self.max_wait_in_seconds:
            raise PipelineDefinitionError(
                f"{where} field 'max_wait_in_seconds': managed spot training needs a maximum wait "
                "(at least max_runtime_in_seconds)"
            )
        if self.max_wait_in_seconds is not None:
            self._check_positive("max_wait_in_seconds", self.max_wait_in_seconds)
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
        keep_alive = self.keep_alive_period_in_seconds
        if keep_alive is not None and (
            isinstance(keep_alive, bool)
            or not isinstance(keep_alive, int)
            or not 0 <= keep_alive <= _MAX_KEEP_ALIVE_SECONDS
        ):
            raise PipelineDefinitionError(
                f"{where} field 'keep_alive_period_in_seconds': expected seconds from 0 to "
                f"{_MAX_KEEP_ALIVE_SECONDS}, got {keep_alive!r}"
            )
        if self.checkpoint_local_path is not None:
            path = posixpath.normpath(str(self.checkpoint_local_path))
            if not path.startswith("/opt/ml/") or ".." in str(self.checkpoint_local_path).split("/"):
                raise PipelineDefinitionError(
                    f"{where} field 'checkpoint_local_path': {self.checkpoint_local_path!r} must be an "
                    "absolute path under /opt/ml/"
                )
            if self.checkpoint_s3_uri is None:
                raise PipelineDefinitionError(
                    f"{where} field 'checkpoint_local_path': only used with 'checkpoint_s3_uri'"
                )
        if not isinstance(self.inputs, Mapping):
            raise PipelineDefinitionError(f"{where} field 'inputs': expected a dict {{channel: source}}")
        for channel in self.inputs:
            self._channel(channel)
        self.resolved_source()

    def _check_positive(self, field: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field {field!r}: expected a positive integer, got {value!r}"
            )

    def _channel(self, name: Any) -> TrainingChannelSpec:
        """Channel ``name`` as the model has it, checked."""
        where = f"task {self.task_id!r} field 'inputs'"
        if not isinstance(name, str) or not name or len(name) > 64 or set(name) - _CHANNEL_NAME_CHARS:
            raise PipelineDefinitionError(
                f"{where}: {name!r} is not a valid channel name (1-64 letters, digits, '.', '-', '_')"
            )
        if name in RESERVED_CHANNELS and self.entry_point:
            raise PipelineDefinitionError(
                f"{where}: channel name {name!r} is reserved by the SageMaker SDK (it uploads the script "
                "and its drivers as channels 'code' and 'sm_drivers')"
            )
        value = self.inputs[name]
        field = f"inputs[{name!r}]"
        given = value if isinstance(value, TrainingInput) else TrainingInput(source=value)
        if given.source is None or given.source == "" or isinstance(given.source, Mapping | list):
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field {field!r}: expected an S3 URI, a reference or a TrainingInput, "
                f"got {given.source!r}"
            )
        check_s3_uri(f"task {self.task_id!r}", field, given.source, what="input")
        for option, choice, choices in (
            ("input_mode", given.input_mode, TRAINING_INPUT_MODES),
            ("distribution", given.distribution, TRAINING_DISTRIBUTIONS),
            ("compression", given.compression, (None, *TRAINING_COMPRESSIONS)),
        ):
            if choice not in choices:
                raise PipelineDefinitionError(
                    f"task {self.task_id!r} field '{field}.{option}': {choice!r} is not one of "
                    f"{[c for c in choices if c is not None]}"
                )
        if given.compression == "Gzip" and given.input_mode != "Pipe":
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field '{field}.compression': Gzip is only used in Pipe input mode"
            )
        if given.content_type is not None and not isinstance(given.content_type, str):
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field '{field}.content_type': expected a MIME type string"
            )
        return TrainingChannelSpec(
            name=name,
            source=given.source,
            content_type=given.content_type,
            input_mode=given.input_mode,
            distribution=given.distribution,
            compression=given.compression,
        )

    def reference_fields(self) -> Mapping[str, Any]:
        return {
            "image_uri": self.image_uri,
            "hyperparameters": self.hyperparameters,
            "inputs": {name: self._channel(name).source for name in self.inputs},
            "instance_type": self.instance_type,
            "environment": self.environment,
            "output_path": self.output_path,
            "checkpoint_s3_uri": self.checkpoint_s3_uri,
        }

    def _dag_folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.dag.fileloc)) if self.has_dag() else os.getcwd()

    def resolved_source(self) -> tuple[str | None, str | None]:
        """(source directory, entry script) resolved against the DAG file and checked to exist; without a source
        directory the entry script is an absolute path and is uploaded alone; (None, None) for an image-only job.

        Relative paths stay inside the DAG file's folder; the entry script stays inside ``source_dir``.
        """
        if not self.entry_point:
            return None, None
        where = f"task {self.task_id!r}"
        if self.source_dir is not None:
            source_dir = local_path(
                where, "source_dir", self.source_dir, self._dag_folder(), kind="directory"
            )
            if os.path.isabs(self.entry_point):
                raise PipelineDefinitionError(
                    f"{where} field 'entry_point': with 'source_dir' it is a path inside that directory, got "
                    f"{self.entry_point!r}"
                )
            script = local_path(
                where, "entry_point", self.entry_point, source_dir, kind="file", folder_name="'source_dir'"
            )
            return source_dir, os.path.relpath(script, source_dir)
        return None, local_path(where, "entry_point", self.entry_point, self._dag_folder(), kind="file")

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> TrainingStepSpec:
        return TrainingStepSpec(**self.common_spec_fields(name, depends_on), **self.training_spec_fields())

    def training_spec_fields(self) -> dict[str, Any]:
        """The fields of :class:`TrainingStepSpec` that describe the training job, as keyword arguments
        (shared with the tuning step, whose trials are these training jobs)."""
        self._check_arguments()
        source_dir, entry_point = self.resolved_source()
        return dict(
            image_uri=self.image_uri,
            entry_point=entry_point,
            source_dir=source_dir,
            hyperparameters=tuple(sorted(self.hyperparameters.items())),
            inputs=tuple(self._channel(channel) for channel in self.inputs),
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            volume_size_in_gb=self.volume_size_in_gb,
            max_runtime_in_seconds=self.max_runtime_in_seconds,
            environment=environment_items(self.task_id, self.environment),
            output_path=self.output_path,
            use_spot_instances=self.use_spot_instances,
            max_wait_in_seconds=self.max_wait_in_seconds,
            checkpoint_s3_uri=self.checkpoint_s3_uri,
            checkpoint_local_path=(
                posixpath.normpath(self.checkpoint_local_path) if self.checkpoint_local_path else None
            ),
            keep_alive_period_in_seconds=self.keep_alive_period_in_seconds,
        )
