"""A SageMaker model step (CreateModel) as an Airflow task, and the inference-container checks it shares with
the register-model step."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.links.sagemaker import SageMakerPipelineExecutionLink
from airflow_provider_smpipe.model.checks import (
    check_environment,
    check_image_uri,
    is_template,
    local_path,
)
from airflow_provider_smpipe.model.checks import check_role_arn as _check_role_arn
from airflow_provider_smpipe.model.references import Reference, StepPropertyRef
from airflow_provider_smpipe.model.steps.model import InferenceCodeSpec, ModelStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator, environment_items

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

#: What framework containers read to find the inference code (set by the compiler, not by the user).
CODE_ENVIRONMENT = ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY")
_VPC_ID = re.compile(r"^[-0-9a-zA-Z]{1,32}$")
#: ``ContainerDefinition.Environment`` limits (CreateModel, and the register step's model package).
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_VALUE_CHARS = 1024


def dag_folder(task: SageMakerPipelineStepOperator) -> str:
    """The folder of the task's DAG file: relative code paths start there."""
    return os.path.dirname(os.path.abspath(task.dag.fileloc)) if task.has_dag() else os.getcwd()


def check_container(where: str, image_uri: Any, model_data: Any, environment: Any = None) -> None:
    """The inference image, the model data and the environment every model container needs."""
    if not image_uri:
        raise PipelineDefinitionError(f"{where} field 'image_uri': an inference image URI is required")
    check_image_uri(where, "image_uri", image_uri)
    check_environment(
        where,
        "environment",
        environment,
        max_entries=MAX_ENVIRONMENT_ENTRIES,
        max_value_chars=MAX_ENVIRONMENT_VALUE_CHARS,
    )
    if not model_data:
        raise PipelineDefinitionError(
            f"{where} field 'model_data': the model artifacts are required, e.g. a training step's "
            "`train.model_artifacts` or an s3:// URI of a model.tar.gz"
        )
    if isinstance(model_data, str) and not is_template(model_data) and not model_data.startswith("s3://"):
        raise PipelineDefinitionError(
            f"{where} field 'model_data': expected an s3:// URI or a reference, got {model_data!r}"
        )
    if not isinstance(model_data, str | Reference):
        raise PipelineDefinitionError(
            f"{where} field 'model_data': expected an s3:// URI or a reference, got {type(model_data).__name__}"
        )


def inference_code(
    where: str,
    task: SageMakerPipelineStepOperator,
    entry_point: str | None,
    source_dir: str | None,
    environment: Mapping[str, Any] | None,
) -> InferenceCodeSpec | None:
    """The inference code resolved against the DAG file, checked to exist."""
    if entry_point is None:
        if source_dir is not None:
            raise PipelineDefinitionError(
                f"{where} field 'source_dir': give the inference script in 'entry_point' as well"
            )
        return None
    if not entry_point or (os.path.isabs(entry_point) and source_dir is not None):
        raise PipelineDefinitionError(
            f"{where} field 'entry_point': expected a script path relative to 'source_dir', got {entry_point!r}"
        )
    taken = sorted(set(environment or ()) & set(CODE_ENVIRONMENT))
    if taken:
        raise PipelineDefinitionError(
            f"{where} field 'environment': {taken} are set from 'entry_point'; do not give them as well"
        )
    folder = dag_folder(task)
    if source_dir is not None:
        directory = local_path(where, "source_dir", source_dir, folder, kind="directory")
        script = local_path(
            where, "entry_point", entry_point, directory, kind="file", folder_name="'source_dir'"
        )
        return InferenceCodeSpec(entry_point=os.path.relpath(script, directory), source_dir=directory)
    return InferenceCodeSpec(entry_point=local_path(where, "entry_point", entry_point, folder, kind="file"))


def vpc_spec(where: str, vpc_config: Mapping[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(subnets, security_group_ids)`` of ``{"subnets": [...], "security_group_ids": [...]}``."""
    if vpc_config is None:
        return (), ()
    field = f"{where} field 'vpc_config'"
    if not isinstance(vpc_config, Mapping):
        raise PipelineDefinitionError(
            f"{field}: expected {{'subnets': [...], 'security_group_ids': [...]}}, got {type(vpc_config).__name__}"
        )
    unknown = set(vpc_config) - {"subnets", "security_group_ids"}
    if unknown:
        raise PipelineDefinitionError(
            f"{field}: unknown keys {sorted(unknown)} (expected 'subnets' and 'security_group_ids')"
        )
    found: dict[str, tuple[str, ...]] = {}
    for key, most in (("subnets", 16), ("security_group_ids", 5)):
        values = vpc_config.get(key)
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise PipelineDefinitionError(f"{field}: '{key}' must be a non-empty list of ids")
        if len(values) > most:
            raise PipelineDefinitionError(f"{field}: at most {most} {key}, got {len(values)}")
        for value in values:
            if not isinstance(value, str) or not (is_template(value) or _VPC_ID.match(value)):
                raise PipelineDefinitionError(f"{field}: {value!r} in '{key}' is not a VPC resource id")
        found[key] = tuple(values)
    return found["subnets"], found["security_group_ids"]


def check_role_arn(where: str, role_arn: Any) -> None:
    _check_role_arn(where, "execution_role_arn", role_arn)


class SageMakerModelStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker model (CreateModel) as one step of the group's pipeline.

    The definition is built with the SageMaker SDK's ``ModelBuilder.build()`` and ``ModelStep``. The model's
    name is chosen by SageMaker when the step runs: :attr:`model_name` refers to it (for a transform step), and
    the task's XCom result holds ``model_name`` and ``model_arn``.

    :param task_id: The task id; the step name is derived from it.
    :param image_uri: The inference container image; a parameter is allowed. (templated)
    :param model_data: The ``model.tar.gz``: a training step's ``model_artifacts``, any reference, or an
        ``s3://`` URI. (templated)
    :param environment: Environment variables of the container; values are strings or references (SageMaker takes
        strings only: a number, boolean or None is refused, not converted). (templated)
    :param entry_point: An inference script for a SageMaker framework container, relative to ``source_dir``
        when given, else to the DAG file. The code is packed into a content-addressed ``sourcedir.tar.gz`` in the
        default bucket and the container gets ``SAGEMAKER_PROGRAM`` and ``SAGEMAKER_SUBMIT_DIRECTORY``; the
        model artifacts are not repacked (no extra step is added to the pipeline).
    :param source_dir: A local directory packed with the script (relative to the DAG file).
    :param vpc_config: ``{"subnets": [...], "security_group_ids": [...]}``: the VPC the model's containers
        join. (templated)
    :param execution_role_arn: The IAM role SageMaker assumes for the model (default: the group's role).
        (templated)
    :param retry_policies: Step retry policies (``Step.SERVICE_FAULT``, ``Step.THROTTLING``) as dicts.
    """

    supported_retry_kinds = frozenset({"step"})
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    property_shapes = ("DescribeModelOutput",)

    template_fields: Sequence[str] = (
        "image_uri",
        "model_data",
        "environment",
        "vpc_config",
        "execution_role_arn",
    )

    def __init__(
        self,
        *,
        image_uri: str | Operand,
        model_data: str | Operand,
        environment: Mapping[str, Operand] | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        vpc_config: Mapping[str, Sequence[str]] | None = None,
        execution_role_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_uri = image_uri
        self.model_data = model_data
        self.environment = dict(environment) if environment is not None else None
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.vpc_config = vpc_config
        self.execution_role_arn = execution_role_arn
        self._check_arguments()

    def _check_arguments(self) -> InferenceCodeSpec | None:
        where = f"task {self.task_id!r}"
        check_container(where, self.image_uri, self.model_data, self.environment)
        vpc_spec(where, self.vpc_config)
        check_role_arn(where, self.execution_role_arn)
        return inference_code(where, self, self.entry_point, self.source_dir, self.environment)

    @property
    def model_name(self) -> StepPropertyRef:
        """The name SageMaker gives the model when the step runs (``ModelName``), e.g. for a transform step."""
        return self.step_property("ModelName")

    @property
    def model_arn(self) -> StepPropertyRef:
        """The created model's ARN (``ModelArn``)."""
        return self.step_property("ModelArn")

    def reference_fields(self) -> Mapping[str, Any]:
        return {"image_uri": self.image_uri, "model_data": self.model_data, "environment": self.environment}

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> ModelStepSpec:
        code = self._check_arguments()  # again: the templated fields are rendered now
        subnets, security_group_ids = vpc_spec(f"task {self.task_id!r}", self.vpc_config)
        return ModelStepSpec(
            **self.common_spec_fields(name, depends_on),
            image_uri=self.image_uri,
            model_data=self.model_data,
            environment=environment_items(self.task_id, self.environment),
            inference_code=code,
            execution_role_arn=self.execution_role_arn or None,
            subnets=subnets,
            security_group_ids=security_group_ids,
        )
