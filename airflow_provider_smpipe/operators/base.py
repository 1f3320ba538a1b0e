"""The base class every SageMaker step operator derives from.

A step operator plays two roles. At DAG parse time it is a declaration: its arguments describe one SageMaker
pipeline step and :meth:`to_step_spec` translates them into the plain model the group compiles. At run time the
task mirrors that step of the group's execution: it waits for it in a deferrable trigger, streams its logs into
the task log and ends in the step's state (see :mod:`airflow_provider_smpipe.operators.step_runtime`).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseOperator, BaseOperatorLink

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.links.sagemaker import (
    SageMakerPipelineExecutionLink,
    SageMakerStepJobLink,
    SageMakerStepLogsLink,
)
from airflow_provider_smpipe.model.references import (
    JoinRef,
    ModelArtifactsRef,
    PropertyFileRef,
    StepOutputRef,
    StepPropertyRef,
    join,
)
from airflow_provider_smpipe.model.spec import CacheSpec, RetrySpec, StepSpec
from airflow_provider_smpipe.operators.step_runtime import StepRuntimeMixin

if TYPE_CHECKING:
    from airflow_provider_smpipe.task_group import SageMakerPipelineTaskGroup

CacheArg = bool | str | None
RetryArg = Mapping[str, Any]


class SageMakerPipelineStepOperator(StepRuntimeMixin, BaseOperator, abc.ABC):
    """Base of the step operators: one Airflow task = one step of the group's SageMaker pipeline.

    Subclasses implement :meth:`to_step_spec` (passing :meth:`common_spec_fields` on). They must be created
    inside a :class:`~airflow_provider_smpipe.SageMakerPipelineTaskGroup`. The task's ``task_display_name``, when
    set, is also the step's display name in SageMaker.

    :param description: The step's description in the pipeline definition.
    :param cache: ``True`` to cache the step, an ISO 8601 duration such as ``"P30D"`` to cache it for that long
        (step kinds SageMaker caches: processing, training, transform, tuning).
    :param retry_policies: SageMaker retry policies as dicts (see :func:`retry_specs`), on the step kinds that
        take them.
    """

    ui_color = "#d9f1e3"
    operator_extra_links: Collection[BaseOperatorLink] = (
        SageMakerPipelineExecutionLink(),
        SageMakerStepJobLink(),
        SageMakerStepLogsLink(),
    )
    #: Whether SageMaker caches this step kind (``CacheConfig``).
    supports_cache: ClassVar[bool] = False
    #: Which retry policies the step kind takes: none, step exceptions only, or step and job failures.
    supported_retry_kinds: ClassVar[frozenset[str]] = frozenset()
    #: Whether :attr:`model_artifacts` (a ``model.tar.gz`` URI) can be referred to.
    produces_model_artifacts: ClassVar[bool] = False
    #: botocore response shapes whose members are this step kind's properties (``step_property`` paths), as
    #: the SDK models them; None when the step kind's properties are not known before it runs.
    property_shapes: ClassVar[tuple[str, ...] | None] = None

    def __init__(
        self,
        *,
        description: str | None = None,
        cache: CacheArg = None,
        retry_policies: Sequence[RetryArg] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.description = description
        self.cache = cache
        self.retry_policies = list(retry_policies) if retry_policies is not None else None
        where = f"task {self.task_id!r}"
        if cache_spec(self.task_id, cache) is not None and not self.supports_cache:
            raise PipelineDefinitionError(
                f"{where} field 'cache': SageMaker does not cache {type(self).__name__} steps"
            )
        for spec in retry_specs(self.task_id, self.retry_policies):
            if spec.kind not in self.supported_retry_kinds:
                what = "retry policies" if not self.supported_retry_kinds else "SageMaker job retry policies"
                raise PipelineDefinitionError(
                    f"{where} field 'retry_policies': {type(self).__name__} steps take no {what}"
                )
        from airflow_provider_smpipe.task_group import find_pipeline_group

        group = find_pipeline_group(self.task_group)
        if group is None:
            raise PipelineDefinitionError(
                f"task {self.task_id!r}: {type(self).__name__} must be created inside a "
                "SageMakerPipelineTaskGroup (`with SageMakerPipelineTaskGroup(...):`), because each step "
                "task mirrors a step of that group's pipeline"
            )
        self.pipeline_group: SageMakerPipelineTaskGroup = group
        # Set by the group when it closes; the trigger and the compiler use it.
        self.step_name: str = ""

    # -- translation -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> StepSpec:
        """Translate this task's (rendered) arguments into the plain step model."""

    def common_spec_fields(self, name: str, depends_on: tuple[str, ...]) -> dict[str, Any]:
        """The :class:`StepSpec` fields every step kind has, as keyword arguments."""
        display_name = self._task_display_name
        return {
            "name": name,
            "task_id": self.task_id,
            "depends_on": depends_on,
            "display_name": display_name,
            "description": self.description,
            "cache": cache_spec(self.task_id, self.cache),
            "retry_policies": retry_specs(self.task_id, self.retry_policies),
        }

    def reference_fields(self) -> Mapping[str, Any]:
        """Arguments that may hold references, by field name (checked by the group at parse time)."""
        return {}

    def declared_outputs(self) -> Sequence[str]:
        """Names of the outputs other steps may reference."""
        return ()

    def declared_property_files(self) -> Sequence[str]:
        """Names of the property files other steps and conditions may read."""
        return ()

    def property_file_locations(self) -> list[dict[str, str]]:
        """``[{"name", "output_name", "path"}]`` of the property files, for the trigger to read into XCom."""
        return []

    # -- references to this step's results -------------------------------------------------------------

    def output_uri(self, name: str) -> StepOutputRef:
        """The S3 URI of this step's output ``name`` (a processing output).

        (Airflow's own ``task.output``, the XComArg of the task's return value, keeps its meaning.)
        """
        return StepOutputRef(self.task_id, name)

    @property
    def model_artifacts(self) -> ModelArtifactsRef:
        """The S3 URI of the ``model.tar.gz`` this step writes (training; tuning: its best training job)."""
        if not self.produces_model_artifacts:
            raise PipelineDefinitionError(
                f"task {self.task_id!r}: a {type(self).__name__} step writes no model artifacts"
            )
        return ModelArtifactsRef(self.task_id)

    def property_value(self, file_name: str, json_path: str) -> PropertyFileRef:
        """A value from one of this step's property files, e.g. ``("evaluation", "metrics.auc.value")``."""
        return PropertyFileRef(self.task_id, file_name, json_path)

    def property_file_uri(self, file_name: str) -> JoinRef:
        """The S3 URI of one of this step's property files, resolved when the step runs.

        E.g. a register step's ``model_metrics={"model_quality_statistics": evaluate.property_file_uri("evaluation")}``.
        """
        locations = self.property_file_locations()
        for location in locations:
            if location["name"] == file_name:
                return join(self.output_uri(location["output_name"]), location["path"].lstrip("/"), on="/")
        raise PipelineDefinitionError(
            f"task {self.task_id!r}: no property file {file_name!r} (declared: {[x['name'] for x in locations]})"
        )

    def step_property(self, path: str) -> StepPropertyRef:
        """Any property of this step, by its path in the Describe* response, e.g. ``"ProcessingJobName"``."""
        return StepPropertyRef(self.task_id, path)

    def property_type(self, path: str) -> str | None:
        """The type of this step's property ``path`` (``"string"``, ``"integer"``, ``"structure"``...), None when
        the step kind's properties are not known before it runs.

        :raises ValueError: when the step kind has no such property, saying why.
        """
        if self.property_shapes is None:
            return None
        from airflow_provider_smpipe.model.property_paths import property_type

        return property_type(self.property_shapes, path)

    # -- relationships: tell the group about edges created after it closed ------------------------------

    def update_relative(self, other: Any, upstream: bool = True, edge_modifier: Any = None) -> None:
        super().update_relative(other, upstream, edge_modifier=edge_modifier)
        self.pipeline_group.check_edge(self, other, other_is_upstream=upstream)

    def _set_relatives(
        self, task_or_task_list: Any, upstream: bool = False, edge_modifier: Any = None
    ) -> None:
        super()._set_relatives(task_or_task_list, upstream=upstream, edge_modifier=edge_modifier)
        relatives = task_or_task_list if isinstance(task_or_task_list, Sequence) else [task_or_task_list]
        for other in relatives:
            self.pipeline_group.check_edge(self, other, other_is_upstream=upstream)


def cache_spec(task_id: str, cache: CacheArg) -> CacheSpec | None:
    """``cache=True`` caches without expiry, ``cache="P30D"`` for 30 days, ``None``/``False`` never."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return CacheSpec()
    if isinstance(cache, str) and cache.startswith("P"):
        return CacheSpec(expire_after=cache)
    raise PipelineDefinitionError(
        f"task {task_id!r} field 'cache': expected True, False, None or an ISO 8601 duration such as "
        f"'P30D', got {cache!r}"
    )


_STEP_EXCEPTIONS = {"Step.SERVICE_FAULT", "Step.THROTTLING"}
#: Bounds of a retry policy's numbers, as the SDK's RetryPolicy checks them (None: no upper bound).
_RETRY_BOUNDS: tuple[tuple[str, int, int | None], ...] = (
    ("max_attempts", 1, 20),
    ("expire_after_mins", 1, 14400),
    ("interval_seconds", 1, None),
    ("backoff_rate", 0, None),
)
_JOB_FAILURES = {
    "SageMaker.JOB_INTERNAL_ERROR",
    "SageMaker.CAPACITY_ERROR",
    "SageMaker.RESOURCE_LIMIT",
}


def retry_specs(task_id: str, policies: Iterable[RetryArg] | None) -> tuple[RetrySpec, ...]:
    """Retry policies given as dicts, e.g. ``{"exception_types": ["SageMaker.CAPACITY_ERROR"],
    "max_attempts": 3, "interval_seconds": 10, "backoff_rate": 2.0}``.

    Step exception types (``Step.SERVICE_FAULT``, ``Step.THROTTLING``) and SageMaker job failure types
    (``SageMaker.JOB_INTERNAL_ERROR``, ``SageMaker.CAPACITY_ERROR``, ``SageMaker.RESOURCE_LIMIT``) cannot be
    mixed in one policy, as in SageMaker.
    """
    specs: list[RetrySpec] = []
    for index, policy in enumerate(policies or ()):
        where = f"task {task_id!r} field 'retry_policies[{index}]'"
        if not isinstance(policy, Mapping):
            raise PipelineDefinitionError(f"{where}: expected a dict, got {type(policy).__name__}")
        unknown = set(policy) - {
            "exception_types",
            "interval_seconds",
            "backoff_rate",
            "max_attempts",
            "expire_after_mins",
        }
        if unknown:
            raise PipelineDefinitionError(f"{where}: unknown keys {sorted(unknown)}")
        types = tuple(policy.get("exception_types", ()))
        if not types:
            raise PipelineDefinitionError(f"{where}: 'exception_types' must name at least one type")
        kind: Literal["step", "job"]
        if set(types) <= _STEP_EXCEPTIONS:
            kind = "step"
        elif set(types) <= _JOB_FAILURES:
            kind = "job"
        else:
            raise PipelineDefinitionError(
                f"{where}: exception_types {list(types)} must all be step exceptions "
                f"{sorted(_STEP_EXCEPTIONS)} or all SageMaker job failures {sorted(_JOB_FAILURES)}"
            )
        if ("max_attempts" in policy) == ("expire_after_mins" in policy):
            raise PipelineDefinitionError(
                f"{where}: give exactly one of 'max_attempts' or 'expire_after_mins' (SageMaker needs one limit)"
            )
        for key, low, high in _RETRY_BOUNDS:
            value = policy.get(key, low)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < low
                or (high is not None and value > high)
                or (key != "backoff_rate" and not float(value).is_integer())
            ):
                bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
                what = "a number" if key == "backoff_rate" else "a whole number"
                raise PipelineDefinitionError(f"{where}: {key!r} must be {what} {bounds}, got {value!r}")
        specs.append(
            RetrySpec(
                kind=kind,
                exception_types=types,
                interval_seconds=int(policy.get("interval_seconds", 1)),
                backoff_rate=float(policy.get("backoff_rate", 2.0)),
                max_attempts=int(policy["max_attempts"]) if "max_attempts" in policy else None,
                expire_after_mins=int(policy["expire_after_mins"]) if "expire_after_mins" in policy else None,
            )
        )
    return tuple(specs)


def environment_items(task_id: str, environment: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if environment is None:
        return ()
    if not isinstance(environment, Mapping):
        raise PipelineDefinitionError(f"task {task_id!r} field 'environment': expected a dict")
    return tuple(sorted((str(k), v) for k, v in environment.items()))
