"""A SageMaker register-model step (a model package version in the model registry) as an Airflow task."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.links.sagemaker import (
    SageMakerModelPackageLink,
    SageMakerPipelineExecutionLink,
)
from airflow_provider_smpipe.model.checks import check_instance_type, is_template
from airflow_provider_smpipe.model.references import Reference, StepPropertyRef
from airflow_provider_smpipe.model.steps.register_model import (
    APPROVAL_STATUSES,
    MODEL_METRICS_FIELDS,
    MetricsSourceSpec,
    RegisterModelStepSpec,
)
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator, environment_items
from airflow_provider_smpipe.operators.model import check_container, inference_code

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand
    from airflow_provider_smpipe.model.steps.model import InferenceCodeSpec

_GROUP = re.compile(
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:\d{12}:model-package-group/)?[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
)
_METADATA_KEY = re.compile(r"^[\w\s.:/=+\-@]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SageMakerRegisterModelStepOperator(SageMakerPipelineStepOperator):
    """A model package version registered in a model package group, as one step of the group's pipeline.

    The definition is built with the SageMaker SDK's ``ModelBuilder.register()`` and ``ModelStep``. SageMaker
    creates the model package group when it does not exist yet. The task's XCom result holds
    ``model_package_arn``, ``model_package_version``, ``model_package_group_name`` and ``approval_status``; the
    "SageMaker Model Package" extra link opens the group's versions in SageMaker Studio.

    :param task_id: The task id; the step name is derived from it.
    :param model_package_group_name: The model package group (name or ARN); created when missing. (templated)
    :param image_uri: The inference container image; a parameter is allowed. (templated)
    :param model_data: The ``model.tar.gz``: a training step's ``model_artifacts``, any reference, or an
        ``s3://`` URI. (templated)
    :param approval_status: ``"Approved"``, ``"PendingManualApproval"`` (the default) or ``"Rejected"``, or a
        pipeline parameter. (templated)
    :param content_types: MIME types of the inference input, e.g. ``["text/csv"]``. (templated)
    :param response_types: MIME types of the inference output. (templated)
    :param inference_instances: Instance types for real-time inference. (templated)
    :param transform_instances: Instance types for batch transform. (templated)
    :param model_metrics: Evaluation reports by kind: ``model_quality_statistics``,
        ``model_quality_constraints``, ``model_data_statistics``, ``model_data_constraints``, ``bias_report``,
        ``bias_pre_training_report``, ``bias_post_training_report``, ``explainability_report``. A report is an
        ``s3://`` URI of a JSON document, a reference such as ``evaluate.property_file_uri("evaluation")`` (the
        S3 URI of a processing step's property file, resolved when the step runs), or
        ``{"s3_uri": ..., "content_type": ...}`` (default content type ``application/json``). (templated)
    :param customer_metadata: Key-value metadata of the model package; references allowed. (templated)
    :param domain: The machine learning domain, e.g. ``"MACHINE_LEARNING"``. (templated)
    :param task: The machine learning task, e.g. ``"CLASSIFICATION"``. (templated)
    :param description: The model package's description (``ModelPackageDescription``), also the step's
        description. At most 1024 characters, no control characters.
    :param environment: Environment variables of the container; values are strings or references (SageMaker takes
        strings only: a number, boolean or None is refused, not converted). (templated)
    :param entry_point: An inference script for a SageMaker framework container, relative to ``source_dir``
        when given, else to the DAG file (packed into a content-addressed ``sourcedir.tar.gz``, as for
        :class:`~airflow_provider_smpipe.SageMakerModelStepOperator`).
    :param source_dir: A local directory packed with the script (relative to the DAG file).
    :param retry_policies: Step retry policies (``Step.SERVICE_FAULT``, ``Step.THROTTLING``) as dicts.
    """

    supported_retry_kinds = frozenset({"step"})
    operator_extra_links = (SageMakerPipelineExecutionLink(), SageMakerModelPackageLink())
    property_shapes = ("DescribeModelPackageOutput",)

    template_fields: Sequence[str] = (
        "model_package_group_name",
        "image_uri",
        "model_data",
        "approval_status",
        "content_types",
        "response_types",
        "inference_instances",
        "transform_instances",
        "model_metrics",
        "customer_metadata",
        "domain",
        "task",
        "environment",
    )

    def __init__(
        self,
        *,
        model_package_group_name: str | Operand,
        image_uri: str | Operand,
        model_data: str | Operand,
        approval_status: str | Operand = "PendingManualApproval",
        content_types: Sequence[str] | None = None,
        response_types: Sequence[str] | None = None,
        inference_instances: Sequence[str] | None = None,
        transform_instances: Sequence[str] | None = None,
        model_metrics: Mapping[str, Any] | None = None,
        customer_metadata: Mapping[str, Operand] | None = None,
        domain: str | Operand | None = None,
        task: str | Operand | None = None,
        environment: Mapping[str, Operand] | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_package_group_name = model_package_group_name
        self.image_uri = image_uri
        self.model_data = model_data
        self.approval_status = approval_status
        self.content_types = list(content_types) if content_types is not None else None
        self.response_types = list(response_types) if response_types is not None else None
        self.inference_instances = list(inference_instances) if inference_instances is not None else None
        self.transform_instances = list(transform_instances) if transform_instances is not None else None
        self.model_metrics = dict(model_metrics) if model_metrics is not None else None
        self.customer_metadata = dict(customer_metadata) if customer_metadata is not None else None
        self.domain = domain
        self.task = task
        self.environment = dict(environment) if environment is not None else None
        self.entry_point = entry_point
        self.source_dir = source_dir
        self._check_arguments()

    # -- checks (at parse time, and again on the rendered values when the pipeline is built) -------------

    def _check_arguments(self) -> InferenceCodeSpec | None:
        where = f"task {self.task_id!r}"
        self._check_group(where)
        check_container(where, self.image_uri, self.model_data, self.environment)
        self._check_approval_status(where)
        for field in ("content_types", "response_types", "inference_instances", "transform_instances"):
            self._check_strings(where, field, instance_types=field.endswith("_instances"))
        self._metrics_specs(where)
        self._check_customer_metadata(where)
        self._check_description(where)
        return inference_code(where, self, self.entry_point, self.source_dir, self.environment)

    def _check_group(self, where: str) -> None:
        group = self.model_package_group_name
        if not group:
            raise PipelineDefinitionError(
                f"{where} field 'model_package_group_name': a model package group is required (it is "
                "created when missing)"
            )
        if isinstance(group, str) and not is_template(group) and not _GROUP.match(group):
            raise PipelineDefinitionError(
                f"{where} field 'model_package_group_name': {group!r} is not a model package group name "
                "(1-63 letters, digits and hyphens) or ARN"
            )
        if not isinstance(group, str | Reference):
            raise PipelineDefinitionError(
                f"{where} field 'model_package_group_name': expected a string or a reference, got "
                f"{type(group).__name__}"
            )

    def _check_approval_status(self, where: str) -> None:
        status = self.approval_status
        if isinstance(status, Reference) or is_template(status):
            return
        if status not in APPROVAL_STATUSES:
            raise PipelineDefinitionError(
                f"{where} field 'approval_status': {status!r} is not one of {list(APPROVAL_STATUSES)} "
                "(or a pipeline parameter)"
            )

    def _check_strings(self, where: str, field: str, *, instance_types: bool) -> None:
        values = getattr(self, field)
        if values is None:
            return
        for value in values:
            if not isinstance(value, str) or not value:
                raise PipelineDefinitionError(f"{where} field {field!r}: {value!r} is not a non-empty string")
            if instance_types:
                check_instance_type(where, field, value)

    def _metrics_specs(self, where: str) -> tuple[tuple[str, MetricsSourceSpec], ...]:
        if self.model_metrics is None:
            return ()
        specs = []
        for key, value in self.model_metrics.items():
            field = f"{where} field {f'model_metrics[{key!r}]'!r}"
            if key not in MODEL_METRICS_FIELDS:
                raise PipelineDefinitionError(
                    f"{where} field 'model_metrics': unknown report {key!r} (expected one of "
                    f"{list(MODEL_METRICS_FIELDS)})"
                )
            content_type: Any = "application/json"
            uri = value
            if isinstance(value, Mapping):
                unknown = set(value) - {"s3_uri", "content_type"}
                if unknown or "s3_uri" not in value:
                    raise PipelineDefinitionError(
                        f"{field}: expected an S3 URI, a reference or {{'s3_uri': ..., 'content_type': ...}}"
                    )
                uri = value["s3_uri"]
                content_type = value.get("content_type", content_type)
                if not isinstance(content_type, str) or not content_type:
                    raise PipelineDefinitionError(f"{field}: 'content_type' must be a MIME type")
            if isinstance(uri, str) and not is_template(uri) and not uri.startswith("s3://"):
                raise PipelineDefinitionError(f"{field}: expected an s3:// URI of a JSON report, got {uri!r}")
            if not isinstance(uri, str | Reference):
                raise PipelineDefinitionError(
                    f"{field}: expected an s3:// URI or a reference, got {type(uri).__name__}"
                )
            specs.append((key, MetricsSourceSpec(s3_uri=uri, content_type=content_type)))
        return tuple(specs)

    def _check_customer_metadata(self, where: str) -> None:
        metadata = self.customer_metadata
        if metadata is None:
            return
        field = f"{where} field 'customer_metadata'"
        if len(metadata) > 50:
            raise PipelineDefinitionError(f"{field}: at most 50 entries, got {len(metadata)}")
        for key, value in metadata.items():
            if not isinstance(key, str) or not _METADATA_KEY.match(key):
                raise PipelineDefinitionError(
                    f"{field}: key {key!r} must be 1-128 letters, digits, spaces or _.:/=+-@"
                )
            if isinstance(value, Reference) or is_template(value):
                continue
            if not isinstance(value, str) or not 1 <= len(value) <= 256:
                raise PipelineDefinitionError(
                    f"{field}: value of {key!r} must be a string of 1-256 characters"
                )

    def _check_description(self, where: str) -> None:
        text = self.description
        if text is None:
            return
        if len(text) > 1024 or _CONTROL.search(text):
            raise PipelineDefinitionError(
                f"{where} field 'description': the model package description takes at most 1024 characters "
                "and no control characters (newlines, tabs)"
            )

    # -- references --------------------------------------------------------------------------------------

    @property
    def model_package_arn(self) -> StepPropertyRef:
        """The registered model package version's ARN (``ModelPackageArn``)."""
        return self.step_property("ModelPackageArn")

    def reference_fields(self) -> Mapping[str, Any]:
        metrics = {
            key: value.get("s3_uri") if isinstance(value, Mapping) else value
            for key, value in (self.model_metrics or {}).items()
        }
        return {
            "model_package_group_name": self.model_package_group_name,
            "image_uri": self.image_uri,
            "model_data": self.model_data,
            "approval_status": self.approval_status,
            "model_metrics": metrics,
            "customer_metadata": self.customer_metadata,
            "domain": self.domain,
            "task": self.task,
            "environment": self.environment,
        }

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> RegisterModelStepSpec:
        code = self._check_arguments()  # again: the templated fields are rendered now
        return RegisterModelStepSpec(
            **self.common_spec_fields(name, depends_on),
            model_package_group_name=self.model_package_group_name,
            image_uri=self.image_uri,
            model_data=self.model_data,
            environment=environment_items(self.task_id, self.environment),
            inference_code=code,
            approval_status=self.approval_status,
            content_types=tuple(self.content_types or ()),
            response_types=tuple(self.response_types or ()),
            inference_instances=tuple(self.inference_instances or ()),
            transform_instances=tuple(self.transform_instances or ()),
            model_metrics=self._metrics_specs(f"task {self.task_id!r}"),
            customer_metadata=tuple((self.customer_metadata or {}).items()),
            domain=self.domain,
            task=self.task,
            model_package_description=self.description,
        )
