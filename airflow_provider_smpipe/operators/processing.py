"""A SageMaker processing step as an Airflow task."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.processing import (
    PROCESSING_INPUT_ROOT,
    PROCESSING_OUTPUT_ROOT,
    ProcessingInputSpec,
    ProcessingOutputSpec,
    ProcessingStepSpec,
    PropertyFileSpec,
)
from airflow_provider_smpipe.operators.base import (
    SageMakerPipelineStepOperator,
    environment_items,
)

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand


class SageMakerProcessingStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker processing job as one step of the group's pipeline.

    Give either ``code`` (a local script, uploaded to S3 and run with ``command``, like the SDK's
    ``ScriptProcessor``) or ``entrypoint`` (a command already in the image, like ``Processor``).

    :param task_id: The task id; the step name is derived from it.
    :param image_uri: The container image of the job. (templated)
    :param code: Path of a local script, relative to the DAG file (or absolute, or an ``s3://`` URI).
    :param command: The command that runs ``code``, e.g. ``["python3"]``. (templated)
    :param entrypoint: The container entrypoint when there is no ``code``. (templated)
    :param arguments: Arguments passed to the script or entrypoint; references allowed. (templated)
    :param inputs: ``{name: source}``; a source is an S3 URI, a parameter or another step's output. Each is
        downloaded to ``/opt/ml/processing/input/<name>``. (templated)
    :param outputs: Names of outputs written under ``/opt/ml/processing/output/<name>``, as a list, or a dict
        ``{name: s3_destination or None}``. Without a destination the output goes to
        ``s3://<default bucket>/<pipeline>/<execution id>/<step>/<name>``. (templated)
    :param property_files: ``{name: "output_name/path/in/output.json"}``: JSON files later steps and conditions
        read with :meth:`property_value`.
    :param instance_type: The instance type, e.g. ``ml.m5.large``; a parameter is allowed. (templated)
    :param instance_count: The number of instances.
    :param volume_size_in_gb: The size of the ML storage volume.
    :param max_runtime_in_seconds: Stop the job after this long.
    :param environment: Environment variables of the job; references allowed. (templated)
    :param cache: ``True`` to cache the step, an ISO 8601 duration such as ``"P30D"`` to cache it for that long.
    :param retry_policies: SageMaker retry policies as dicts (see ``retry_specs``).
    """

    supports_cache = True
    supported_retry_kinds = frozenset({"step", "job"})

    template_fields: Sequence[str] = (
        "image_uri",
        "command",
        "entrypoint",
        "arguments",
        "inputs",
        "outputs",
        "environment",
        "instance_type",
    )

    def __init__(
        self,
        *,
        image_uri: str | Operand,
        code: str | None = None,
        command: Sequence[str] | None = None,
        entrypoint: Sequence[Operand] | None = None,
        arguments: Sequence[Operand] | None = None,
        inputs: Mapping[str, Operand] | None = None,
        outputs: Sequence[str] | Mapping[str, Operand | None] | None = None,
        property_files: Mapping[str, str | tuple[str, str]] | None = None,
        instance_type: str | Operand = "ml.m5.large",
        instance_count: int | Operand = 1,
        volume_size_in_gb: int | Operand = 30,
        max_runtime_in_seconds: int | Operand | None = None,
        environment: Mapping[str, Operand] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_uri = image_uri
        self.code = code
        self.command = list(command) if command is not None else None
        self.entrypoint = list(entrypoint) if entrypoint is not None else None
        self.arguments = list(arguments) if arguments is not None else None
        self.inputs = dict(inputs) if inputs is not None else {}
        self.outputs = outputs
        self.property_files = dict(property_files) if property_files is not None else {}
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.volume_size_in_gb = volume_size_in_gb
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.environment = dict(environment) if environment is not None else None
        self._check_arguments()

    def _check_arguments(self) -> None:
        where = f"task {self.task_id!r}"
        if not self.image_uri:
            raise PipelineDefinitionError(f"{where} field 'image_uri': an image URI is required")
        if (self.code is None) == (self.entrypoint is None):
            raise PipelineDefinitionError(
                f"{where}: give exactly one of 'code' (a script to run) or 'entrypoint' (a command in the image)"
            )
        if self.code is not None and not self.command:
            raise PipelineDefinitionError(
                f"{where} field 'command': 'code' needs the command that runs it, e.g. command=['python3']"
            )
        for name in self.inputs:
            _check_channel_name(where, "inputs", name)
        for name in self._output_destinations():
            _check_channel_name(where, "outputs", name)
        for name, location in self.property_files.items():
            output_name, _ = _split_property_file(where, name, location)
            if output_name not in self._output_destinations():
                raise PipelineDefinitionError(
                    f"{where} field 'property_files[{name!r}]': output {output_name!r} is not one of this "
                    f"step's outputs {sorted(self._output_destinations())}"
                )

    def _output_destinations(self) -> dict[str, Operand | None]:
        if self.outputs is None:
            return {}
        if isinstance(self.outputs, Mapping):
            return dict(self.outputs)
        if isinstance(self.outputs, str):
            return {self.outputs: None}
        return {name: None for name in self.outputs}

    def reference_fields(self) -> Mapping[str, Any]:
        return {
            "image_uri": self.image_uri,
            "entrypoint": self.entrypoint,
            "arguments": self.arguments,
            "inputs": self.inputs,
            "outputs": self._output_destinations(),
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "volume_size_in_gb": self.volume_size_in_gb,
            "max_runtime_in_seconds": self.max_runtime_in_seconds,
            "environment": self.environment,
        }

    def declared_outputs(self) -> Sequence[str]:
        return list(self._output_destinations())

    def declared_property_files(self) -> Sequence[str]:
        return list(self.property_files)

    def property_file_locations(self) -> list[dict[str, str]]:
        where = f"task {self.task_id!r}"
        locations = []
        for name, location in self.property_files.items():
            output_name, path = _split_property_file(where, name, location)
            locations.append({"name": name, "output_name": output_name, "path": path})
        return locations

    def resolved_code_path(self) -> str | None:
        """``code`` as an absolute path (relative paths are relative to the DAG file) or an S3 URI."""
        if self.code is None or self.code.startswith("s3://") or os.path.isabs(self.code):
            return self.code
        dag_folder = os.path.dirname(os.path.abspath(self.dag.fileloc)) if self.has_dag() else os.getcwd()
        return os.path.normpath(os.path.join(dag_folder, self.code))

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> ProcessingStepSpec:
        where = f"task {self.task_id!r}"
        return ProcessingStepSpec(
            **self.common_spec_fields(name, depends_on),
            image_uri=self.image_uri,
            code=self.resolved_code_path(),
            command=tuple(self.command) if self.command else None,
            entrypoint=tuple(self.entrypoint) if self.entrypoint else None,
            arguments=tuple(self.arguments or ()),
            inputs=tuple(
                ProcessingInputSpec(name=k, source=v, local_path=f"{PROCESSING_INPUT_ROOT}/{k}")
                for k, v in self.inputs.items()
            ),
            outputs=tuple(
                ProcessingOutputSpec(name=k, destination=v, local_path=f"{PROCESSING_OUTPUT_ROOT}/{k}")
                for k, v in self._output_destinations().items()
            ),
            property_files=tuple(
                PropertyFileSpec(name, *_split_property_file(where, name, location))
                for name, location in self.property_files.items()
            ),
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            volume_size_in_gb=self.volume_size_in_gb,
            max_runtime_in_seconds=self.max_runtime_in_seconds,
            environment=environment_items(self.task_id, self.environment),
        )


def _check_channel_name(where: str, field: str, name: Any) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise PipelineDefinitionError(
            f"{where} field {field!r}: {name!r} is not a usable name (a non-empty string without '/')"
        )


def _split_property_file(where: str, name: str, location: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(location, tuple) and len(location) == 2:
        return location[0], location[1]
    if isinstance(location, str) and "/" in location.strip("/"):
        output_name, _, path = location.strip("/").partition("/")
        return output_name, path
    raise PipelineDefinitionError(
        f"{where} field 'property_files[{name!r}]': expected 'output_name/path/file.json' or "
        f"('output_name', 'path/file.json'), got {location!r}"
    )
