"""A SageMaker processing step as an Airflow task."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.checks import (
    check_environment,
    check_image_uri,
    check_instance_type,
    check_s3_uri,
    check_whole_number,
    local_path,
)
from airflow_provider_smpipe.model.steps.processing import (
    PROCESSING_CODE_INPUT,
    PROCESSING_CODE_PATH,
    PROCESSING_DISTRIBUTIONS,
    PROCESSING_INPUT_MODES,
    PROCESSING_INPUT_ROOT,
    PROCESSING_OUTPUT_ROOT,
    PROCESSING_ROOT,
    PROCESSING_UPLOAD_MODES,
    ProcessingInput,
    ProcessingInputSpec,
    ProcessingOutput,
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

#: SageMaker's limits of a processing job (``CreateProcessingJob``).
MAX_INSTANCES = 100
MAX_VOLUME_SIZE_IN_GB = 16384
MAX_RUNTIME_IN_SECONDS = 777600
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_VALUE_CHARS = 256


class SageMakerProcessingStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker processing job as one step of the group's pipeline.

    Give either ``code`` (a local script, uploaded to S3 and run with ``command``, like the SDK's
    ``ScriptProcessor``) or ``entrypoint`` (a command already in the image, like ``Processor``).

    :param task_id: The task id; the step name is derived from it.
    :param image_uri: The container image of the job. (templated)
    :param code: Path of a local script, relative to the DAG file (or absolute, or an ``s3://`` URI); checked to exist
        when the DAG is parsed. A relative path may not leave the DAG file's folder (``..``).
    :param command: The command that runs ``code``, e.g. ``["python3"]``. (templated)
    :param entrypoint: The container entrypoint when there is no ``code``. (templated)
    :param arguments: Arguments passed to the script or entrypoint; references allowed. (templated)
    :param inputs: ``{name: source}``; a source is an S3 URI, a parameter or another step's output, downloaded
        to ``/opt/ml/processing/input/<name>``; or a :class:`~airflow_provider_smpipe.ProcessingInput` naming its
        container path (``destination``), input mode (``"File"``/``"Pipe"``) and distribution
        (``"FullyReplicated"``/``"ShardedByS3Key"``). (templated)
    :param outputs: Names of outputs written under ``/opt/ml/processing/output/<name>``, as a list, or a dict
        ``{name: s3_destination or None}``, or ``{name: ProcessingOutput(...)}`` naming the container directory
        (``source``) and upload mode (``"EndOfJob"``/``"Continuous"``). Without a destination the output goes to
        ``s3://<default bucket>/<pipeline>/<execution id>/<step>/<name>``. (templated)
    :param property_files: ``{name: "output_name/path/in/output.json"}``: JSON files later steps and conditions
        read with :meth:`property_value`.
    :param instance_type: The instance type, e.g. ``ml.m5.large``; a parameter is allowed. (templated)
    :param instance_count: The number of instances.
    :param volume_size_in_gb: The size of the ML storage volume.
    :param max_runtime_in_seconds: Stop the job after this long.
    :param environment: Environment variables of the job; values are strings or references (SageMaker takes strings
        only: a number, boolean or None is refused, not converted). (templated)
    :param cache: ``True`` to cache the step, an ISO 8601 duration such as ``"P30D"`` to cache it for that long.
    :param retry_policies: SageMaker retry policies as dicts (see ``retry_specs``).
    """

    supports_cache = True
    supported_retry_kinds = frozenset({"step", "job"})
    property_shapes = ("DescribeProcessingJobResponse",)

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
        inputs: Mapping[str, Operand | ProcessingInput] | None = None,
        outputs: Sequence[str] | Mapping[str, Operand | ProcessingOutput | None] | None = None,
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
        check_image_uri(where, "image_uri", self.image_uri)
        check_instance_type(where, "instance_type", self.instance_type)
        check_whole_number(where, "instance_count", self.instance_count, maximum=MAX_INSTANCES)
        check_whole_number(where, "volume_size_in_gb", self.volume_size_in_gb, maximum=MAX_VOLUME_SIZE_IN_GB)
        if self.max_runtime_in_seconds is not None:
            check_whole_number(
                where, "max_runtime_in_seconds", self.max_runtime_in_seconds, maximum=MAX_RUNTIME_IN_SECONDS
            )
        check_environment(
            where,
            "environment",
            self.environment,
            max_entries=MAX_ENVIRONMENT_ENTRIES,
            max_value_chars=MAX_ENVIRONMENT_VALUE_CHARS,
        )
        if (self.code is None) == (self.entrypoint is None):
            raise PipelineDefinitionError(
                f"{where}: give exactly one of 'code' (a script to run) or 'entrypoint' (a command in the image)"
            )
        if self.code is not None and not self.command:
            raise PipelineDefinitionError(
                f"{where} field 'command': 'code' needs the command that runs it, e.g. command=['python3']"
            )
        self.resolved_code_path()
        if (
            self.outputs is not None
            and not isinstance(self.outputs, Mapping | str)
            and len(set(self.outputs)) != len(list(self.outputs))
        ):
            twice = sorted({n for n in self.outputs if list(self.outputs).count(n) > 1})
            raise PipelineDefinitionError(f"{where} field 'outputs': {twice} are listed more than once")
        if not isinstance(self.inputs, Mapping):
            raise PipelineDefinitionError(f"{where} field 'inputs': expected a dict {{name: source}}")
        # Every container path, with what claims it, to refuse two claims on one directory.
        claims: list[tuple[str, str, str]] = []
        if self.code is not None:
            claims.append((PROCESSING_CODE_PATH, "the step's code (input 'code')", "code"))
        for name in self.inputs:
            _check_channel_name(where, "inputs", name)
            if self.code is not None and name == PROCESSING_CODE_INPUT:
                raise PipelineDefinitionError(
                    f"{where} field 'inputs': input name {name!r} is the one the step's own code is uploaded "
                    "as (/opt/ml/processing/input/code); give your input another name"
                )
            claims.append((self._input(name).local_path, f"input {name!r}", f"inputs[{name!r}].destination"))
        for name in self._output_values():
            _check_channel_name(where, "outputs", name)
            claims.append((self._output(name).local_path, f"output {name!r}", f"outputs[{name!r}].source"))
        _check_distinct_paths(where, claims)
        outputs = self._output_values()
        for name, location in self.property_files.items():
            output_name, _ = _split_property_file(where, name, location)
            if output_name not in outputs:
                raise PipelineDefinitionError(
                    f"{where} field 'property_files[{name!r}]': output {output_name!r} is not one of this "
                    f"step's outputs {sorted(outputs)}"
                )

    def _output_values(self) -> dict[str, Operand | ProcessingOutput | None]:
        if self.outputs is None:
            return {}
        if isinstance(self.outputs, Mapping):
            return dict(self.outputs)
        if isinstance(self.outputs, str):
            return {self.outputs: None}
        return {name: None for name in self.outputs}

    def _output_destinations(self) -> dict[str, Operand | None]:
        return {name: self._output(name).destination for name in self._output_values()}

    def _input(self, name: str) -> ProcessingInputSpec:
        """Input ``name`` as the model has it, checked (container path, mode, distribution)."""
        value = self.inputs[name]
        field = f"inputs[{name!r}]"
        if not isinstance(value, ProcessingInput):
            if value is None or isinstance(value, Mapping | list):
                raise PipelineDefinitionError(
                    f"task {self.task_id!r} field {field!r}: expected an S3 URI, a reference or a "
                    f"ProcessingInput, got {value!r}"
                )
            value = ProcessingInput(source=value)
        if value.source is None or value.source == "":
            raise PipelineDefinitionError(f"task {self.task_id!r} field {field!r}: 'source' is required")
        check_s3_uri(f"task {self.task_id!r}", field, value.source, what="input")
        if value.mode not in PROCESSING_INPUT_MODES:
            extra = (
                " (FastFile is a training channel mode; SageMaker processing inputs take File or Pipe)"
                if value.mode == "FastFile"
                else ""
            )
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field '{field}.mode': {value.mode!r} is not one of "
                f"{list(PROCESSING_INPUT_MODES)}{extra}"
            )
        self._check_choice(f"{field}.distribution", value.distribution, PROCESSING_DISTRIBUTIONS)
        path = self._container_path(
            f"{field}.destination", value.destination, f"{PROCESSING_INPUT_ROOT}/{name}"
        )
        return ProcessingInputSpec(
            name=name,
            source=value.source,
            local_path=path,
            s3_input_mode=value.mode,
            s3_data_distribution_type=value.distribution,
        )

    def _output(self, name: str) -> ProcessingOutputSpec:
        """Output ``name`` as the model has it, checked (container path, upload mode)."""
        value = self._output_values()[name]
        field = f"outputs[{name!r}]"
        destination_field = f"{field}.destination"
        if not isinstance(value, ProcessingOutput):
            if isinstance(value, Mapping | list):
                raise PipelineDefinitionError(
                    f"task {self.task_id!r} field {field!r}: expected an S3 URI, a reference, None or a "
                    f"ProcessingOutput, got {value!r}"
                )
            value = ProcessingOutput(destination=value)
            destination_field = field
        # A destination that is not in S3 is refused, never replaced by a generated path as the SDK would.
        check_s3_uri(f"task {self.task_id!r}", destination_field, value.destination, what="output")
        self._check_choice(f"{field}.upload_mode", value.upload_mode, PROCESSING_UPLOAD_MODES)
        path = self._container_path(f"{field}.source", value.source, f"{PROCESSING_OUTPUT_ROOT}/{name}")
        return ProcessingOutputSpec(
            name=name,
            destination=value.destination,
            local_path=path,
            s3_upload_mode=value.upload_mode,
        )

    def _check_choice(self, field: str, value: Any, choices: tuple[str, ...]) -> None:
        if value not in choices:
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field {field!r}: {value!r} is not one of {list(choices)}"
            )

    def _container_path(self, field: str, value: Any, default: str) -> str:
        if value is None:
            return default
        where = f"task {self.task_id!r} field {field!r}"
        if not isinstance(value, str):
            raise PipelineDefinitionError(
                f"{where}: a container path is a plain string, got {type(value).__name__}"
            )
        normalized = posixpath.normpath(value)
        if not normalized.startswith(PROCESSING_ROOT + "/") or ".." in value.split("/"):
            raise PipelineDefinitionError(
                f"{where}: {value!r} must be an absolute path under {PROCESSING_ROOT}/ (SageMaker mounts "
                "processing inputs and outputs there)"
            )
        if len(normalized) > 256:
            raise PipelineDefinitionError(f"{where}: longer than 256 characters")
        return normalized

    def reference_fields(self) -> Mapping[str, Any]:
        return {
            "image_uri": self.image_uri,
            "entrypoint": self.entrypoint,
            "arguments": self.arguments,
            "inputs": {name: self._input(name).source for name in self.inputs},
            "outputs": self._output_destinations(),
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "volume_size_in_gb": self.volume_size_in_gb,
            "max_runtime_in_seconds": self.max_runtime_in_seconds,
            "environment": self.environment,
        }

    def declared_outputs(self) -> Sequence[str]:
        return list(self._output_values())

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
        """``code`` as an absolute path (relative paths are relative to the DAG file and stay in its folder),
        checked to be a file, or an S3 URI."""
        if self.code is None or (isinstance(self.code, str) and self.code.startswith("s3://")):
            return self.code
        dag_folder = os.path.dirname(os.path.abspath(self.dag.fileloc)) if self.has_dag() else os.getcwd()
        return local_path(f"task {self.task_id!r}", "code", self.code, dag_folder, kind="file")

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> ProcessingStepSpec:
        where = f"task {self.task_id!r}"
        # Rendered templates may have changed container paths: check them again.
        self._check_arguments()
        return ProcessingStepSpec(
            **self.common_spec_fields(name, depends_on),
            image_uri=self.image_uri,
            code=self.resolved_code_path(),
            command=tuple(self.command) if self.command else None,
            entrypoint=tuple(self.entrypoint) if self.entrypoint else None,
            arguments=tuple(self.arguments or ()),
            inputs=tuple(self._input(k) for k in self.inputs),
            outputs=tuple(self._output(k) for k in self._output_values()),
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


def _check_distinct_paths(where: str, claims: list[tuple[str, str, str]]) -> None:
    """Refuse two inputs/outputs on one container directory. (One inside another's is allowed: AWS's own
    examples mount an input at /opt/ml/processing/input with the script at /opt/ml/processing/input/code.)"""
    for index, (path, owner, field) in enumerate(claims):
        for other_path, other, _ in claims[:index]:
            if path == other_path:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: {owner} and {other} both use the container path {path!r}"
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
