"""A SageMaker batch transform step as an Airflow task."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.checks import check_environment, check_instance_type, is_literal
from airflow_provider_smpipe.model.references import Reference, StepPropertyRef
from airflow_provider_smpipe.model.steps.transform import TRANSFORM_OUTPUT_PATH, TransformStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator, environment_items

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_smpipe.model.references import Operand

#: The values SageMaker accepts for the enum-valued arguments (``CreateTransformJob``).
TRANSFORM_ENUMS: dict[str, tuple[str, ...]] = {
    "data_type": ("S3Prefix", "ManifestFile", "AugmentedManifestFile"),
    "split_type": ("None", "Line", "RecordIO", "TFRecord"),
    "compression_type": ("None", "Gzip"),
    "batch_strategy": ("MultiRecord", "SingleRecord"),
    "assemble_with": ("None", "Line"),
    "join_source": ("None", "Input"),
}
#: SageMaker's limits: a request's payload, and payload times concurrent requests, up to 100 MB.
MAX_PAYLOAD_MB = 100
MAX_ENVIRONMENT_ENTRIES = 16
MAX_ENVIRONMENT_VALUE_CHARS = 10240
_ENVIRONMENT_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}")
_JSON_PATH_MAX = 63


class SageMakerTransformStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker batch transform job as one step of the group's pipeline (the SDK's ``Transformer``).

    Runs a SageMaker model over every object under an S3 prefix and writes ``<object>.out`` for each under
    ``output_path``. The model is usually created by an earlier step (``model_name=model_step.model_name``);
    a pipeline parameter or the name of an existing model work too.

    Refer to the output location in later steps with :meth:`output_uri` (``transform.output_uri()``).

    :param task_id: The task id; the step name is derived from it.
    :param model_name: The SageMaker model to run: a Model step's ``model_name``, a parameter or a literal
        name. (templated)
    :param data: The input: an S3 URI (prefix or object), a parameter or another step's output. (templated)
    :param data_type: ``"S3Prefix"`` (every object under ``data``) or ``"ManifestFile"`` (``data`` is a
        manifest listing the objects).
    :param content_type: The MIME type of the input, sent as the request's Content-Type, e.g. ``"text/csv"``.
        (templated)
    :param split_type: How an input object is split into records: ``"None"`` (one record per object),
        ``"Line"``, ``"RecordIO"`` or ``"TFRecord"``. (templated)
    :param compression_type: ``"Gzip"`` when the input objects are gzip-compressed, else ``"None"``.
        (templated)
    :param batch_strategy: ``"MultiRecord"`` (as many records per request as ``max_payload_in_mb`` allows) or
        ``"SingleRecord"`` (one record per request). (templated)
    :param assemble_with: ``"Line"`` to write one output line per request's result, ``"None"`` to
        concatenate the results. (templated)
    :param accept: The MIME type the results should have, sent as the request's Accept, e.g. ``"text/csv"``.
        (templated)
    :param join_source: ``"Input"`` to join each input record with its result (CSV: appended columns; JSON:
        a ``SageMakerOutput`` attribute), ``"None"`` to write the results alone. (templated)
    :param input_filter: A JSONPath selecting the part of each record sent to the model, e.g. ``"$[1:]"``
        (drop the first CSV column) or ``"$.features"``. (templated)
    :param output_filter: A JSONPath selecting the part of the (joined) record written to the output, e.g.
        ``"$[0,-1]"`` (first input column and the result). (templated)
    :param max_payload_in_mb: The maximum size of one request, 0 to 100 (SageMaker's default: 6).
    :param max_concurrent_transforms: The maximum number of parallel requests to each instance.
    :param instance_type: The instance type, e.g. ``ml.m5.large``; a parameter is allowed. (templated)
    :param instance_count: The number of instances (a literal: the SDK takes no parameter here); the input
        objects are shared out between them.
    :param output_path: Where the results go (default:
        ``s3://<default bucket>/<pipeline>/<execution id>/<step>/output``). (templated)
    :param environment: Environment variables of the transform containers (at most 16), added to the model's own;
        values are strings or references (SageMaker takes strings only: a number, boolean or None is refused, not
        converted). (templated)
    :param cache: ``True`` or an ISO 8601 duration such as ``"P30D"`` to cache the step.
    :param retry_policies: SageMaker retry policies as dicts (step exceptions and job failures).
    """

    supports_cache = True
    supported_retry_kinds = frozenset({"step", "job"})
    property_shapes = ("DescribeTransformJobResponse",)

    template_fields: Sequence[str] = (
        "model_name",
        "data",
        "content_type",
        "split_type",
        "compression_type",
        "batch_strategy",
        "assemble_with",
        "accept",
        "join_source",
        "input_filter",
        "output_filter",
        "instance_type",
        "output_path",
        "environment",
    )

    def __init__(
        self,
        *,
        model_name: str | Operand,
        data: str | Operand,
        data_type: str = "S3Prefix",
        content_type: str | Operand | None = None,
        split_type: str | Operand | None = None,
        compression_type: str | Operand | None = None,
        batch_strategy: str | Operand | None = None,
        assemble_with: str | Operand | None = None,
        accept: str | Operand | None = None,
        join_source: str | Operand | None = None,
        input_filter: str | Operand | None = None,
        output_filter: str | Operand | None = None,
        max_payload_in_mb: int | Operand | None = None,
        max_concurrent_transforms: int | Operand | None = None,
        instance_type: str | Operand = "ml.m5.large",
        instance_count: int = 1,
        output_path: str | Operand | None = None,
        environment: Mapping[str, Operand] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.data = data
        self.data_type = data_type
        self.content_type = content_type
        self.split_type = split_type
        self.compression_type = compression_type
        self.batch_strategy = batch_strategy
        self.assemble_with = assemble_with
        self.accept = accept
        self.join_source = join_source
        self.input_filter = input_filter
        self.output_filter = output_filter
        self.max_payload_in_mb = max_payload_in_mb
        self.max_concurrent_transforms = max_concurrent_transforms
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.output_path = output_path
        self.environment = dict(environment) if environment is not None else None
        self._check_arguments()

    # -- validation ----------------------------------------------------------------------------------------

    def _check_arguments(self) -> None:
        """Refuse what SageMaker would refuse. A string still holding a template is checked once rendered (the
        ``render`` command compiles templates as written)."""
        where = f"task {self.task_id!r}"

        def literal(value: Any) -> bool:
            return is_literal(value)

        if self.model_name is None or (isinstance(self.model_name, str) and not self.model_name.strip()):
            raise PipelineDefinitionError(
                f"{where} field 'model_name': a model is required (a Model step's model_name, a pipeline "
                "parameter or the name of an existing SageMaker model)"
            )
        if not isinstance(self.model_name, str | Reference):
            raise PipelineDefinitionError(
                f"{where} field 'model_name': expected a model name or a reference, got "
                f"{type(self.model_name).__name__}"
            )
        if self.data is None or (isinstance(self.data, str) and not self.data.strip()):
            raise PipelineDefinitionError(f"{where} field 'data': the S3 input of the transform is required")
        if literal(self.data) and not str(self.data).startswith("s3://"):
            raise PipelineDefinitionError(f"{where} field 'data': {self.data!r} is not an S3 URI (s3://...)")
        for field, allowed in TRANSFORM_ENUMS.items():
            value = getattr(self, field)
            if value is None or isinstance(value, Reference):
                continue
            if not isinstance(value, str):
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: expected one of {list(allowed)}, got {value!r}"
                )
            if literal(value) and value not in allowed:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: {value!r} is not one of {list(allowed)}"
                )
        self._check_counts(where)
        for field in ("input_filter", "output_filter"):
            value = getattr(self, field)
            if literal(value) and (not value.startswith("$") or len(value) > _JSON_PATH_MAX):
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: {value!r} is not a JSONPath of at most {_JSON_PATH_MAX} "
                    "characters starting with '$' (e.g. '$', '$[1:]', '$.features')"
                )
        if literal(self.output_path) and not str(self.output_path).startswith("s3://"):
            raise PipelineDefinitionError(
                f"{where} field 'output_path': {self.output_path!r} is not an S3 URI (s3://...)"
            )
        if self.environment is not None:
            if not isinstance(self.environment, Mapping):
                raise PipelineDefinitionError(f"{where} field 'environment': expected a dict")
            if len(self.environment) > MAX_ENVIRONMENT_ENTRIES:
                raise PipelineDefinitionError(
                    f"{where} field 'environment': SageMaker takes at most {MAX_ENVIRONMENT_ENTRIES} "
                    f"variables for a transform job, got {len(self.environment)}"
                )
            for key in self.environment:
                if not isinstance(key, str) or not _ENVIRONMENT_KEY.fullmatch(key):
                    raise PipelineDefinitionError(
                        f"{where} field 'environment': {key!r} is not a valid variable name"
                    )
        check_environment(
            where,
            "environment",
            self.environment,
            max_entries=MAX_ENVIRONMENT_ENTRIES,
            max_value_chars=MAX_ENVIRONMENT_VALUE_CHARS,
        )
        check_instance_type(where, "instance_type", self.instance_type)

    def _check_counts(self, where: str) -> None:
        count = self.instance_count
        if isinstance(count, Reference):
            # sagemaker-core's TransformResources shape takes an int only (unlike processing and training).
            raise PipelineDefinitionError(
                f"{where} field 'instance_count': the SageMaker SDK 3.x takes a literal number of instances "
                "for a transform job, not a pipeline parameter or step property"
            )
        if isinstance(count, bool) or not isinstance(count, int):
            raise PipelineDefinitionError(
                f"{where} field 'instance_count': expected an integer, got {count!r}"
            )
        if count < 1:
            raise PipelineDefinitionError(f"{where} field 'instance_count': must be at least 1, got {count}")
        payload, concurrent = self.max_payload_in_mb, self.max_concurrent_transforms
        for field, value in (("max_payload_in_mb", payload), ("max_concurrent_transforms", concurrent)):
            if value is None or isinstance(value, Reference):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: expected a non-negative integer, got {value!r}"
                )
        if isinstance(payload, int) and payload > MAX_PAYLOAD_MB:
            raise PipelineDefinitionError(
                f"{where} field 'max_payload_in_mb': SageMaker allows at most {MAX_PAYLOAD_MB} MB, got {payload}"
            )
        if isinstance(payload, int) and isinstance(concurrent, int) and payload * concurrent > MAX_PAYLOAD_MB:
            raise PipelineDefinitionError(
                f"{where} field 'max_concurrent_transforms': max_concurrent_transforms x max_payload_in_mb "
                f"({concurrent} x {payload}) must not exceed {MAX_PAYLOAD_MB} MB"
            )

    # -- references ---------------------------------------------------------------------------------------

    def reference_fields(self) -> Mapping[str, Any]:
        return {
            "model_name": self.model_name,
            "data": self.data,
            "content_type": self.content_type,
            "split_type": self.split_type,
            "compression_type": self.compression_type,
            "batch_strategy": self.batch_strategy,
            "assemble_with": self.assemble_with,
            "accept": self.accept,
            "join_source": self.join_source,
            "input_filter": self.input_filter,
            "output_filter": self.output_filter,
            "max_payload_in_mb": self.max_payload_in_mb,
            "max_concurrent_transforms": self.max_concurrent_transforms,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "output_path": self.output_path,
            "environment": self.environment,
        }

    def output_uri(self, name: str = "output") -> StepPropertyRef:  # type: ignore[override]
        """The S3 location the transform writes its results to (``TransformOutput.S3OutputPath``).

        A transform step has one output, ``"output"``: ``transform.output_uri()``.
        """
        if name != "output":
            raise PipelineDefinitionError(
                f"task {self.task_id!r}: a transform step has one output, 'output', not {name!r}"
            )
        return StepPropertyRef(self.task_id, TRANSFORM_OUTPUT_PATH)

    # -- translation --------------------------------------------------------------------------------------

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> TransformStepSpec:
        self._check_arguments()  # again: the templated fields are rendered now
        return TransformStepSpec(
            **self.common_spec_fields(name, depends_on),
            model_name=self.model_name,
            data=self.data,
            data_type=self.data_type,
            content_type=self.content_type,
            split_type=self.split_type,
            compression_type=self.compression_type,
            batch_strategy=self.batch_strategy,
            assemble_with=self.assemble_with,
            accept=self.accept,
            join_source=self.join_source,
            input_filter=self.input_filter,
            output_filter=self.output_filter,
            max_payload_in_mb=self.max_payload_in_mb,
            max_concurrent_transforms=self.max_concurrent_transforms,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            output_path=self.output_path,
            environment=environment_items(self.task_id, self.environment),
        )
