"""The TaskGroup that turns its step tasks into one SageMaker pipeline."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from airflow.sdk import TaskGroup

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.naming import is_valid_pipeline_name, pipeline_name_for, step_name_for
from airflow_provider_smpipe.model.parameters import (
    check_count,
    execution_value,
    is_unrendered,
    parameter_spec,
)
from airflow_provider_smpipe.model.references import (
    ModelArtifactsRef,
    Parameter,
    ParameterRef,
    PropertyFileRef,
    Reference,
    StepOutputRef,
    StepPropertyRef,
    iter_references,
)

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.spec import ParameterSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator
    from airflow_provider_smpipe.operators.launch import SageMakerPipelineLaunchOperator

LAUNCH_TASK_ID = "launch"
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")


def find_pipeline_group(group: TaskGroup | None) -> SageMakerPipelineTaskGroup | None:
    """The innermost SageMakerPipelineTaskGroup containing ``group`` (itself included)."""
    while group is not None:
        if isinstance(group, SageMakerPipelineTaskGroup):
            return group
        group = group.parent_group
    return None


@attrs.define(kw_only=True, repr=False)
class SageMakerPipelineTaskGroup(TaskGroup):
    """A TaskGroup whose step tasks compile into ONE SageMaker pipeline, run as one execution per DAG run.

    Every task created inside must be a step operator. When the group closes it checks the steps, wires the
    dependencies references imply, and adds a ``launch`` task upstream of every step: at run time ``launch``
    compiles the group, creates or updates the pipeline and starts the execution; each step task then mirrors
    its own step.

    :param group_id: The group id (as for any TaskGroup).
    :param pipeline_name: The SageMaker pipeline name; default: DAG id and group id made valid
        (``my_dag`` + ``train`` -> ``my-dag-train``).
    :param role_arn: The IAM role SageMaker runs the pipeline and its jobs with. Required.
    :param parameters: Pipeline parameters with their defaults: ``{"Threshold": 0.8}`` (a Float), or
        :class:`~airflow_provider_smpipe.Parameter` to give the type explicitly. Refer to one in step
        arguments with :meth:`parameter`.
    :param parameter_values: Per-run values for the parameters, e.g. ``{"Threshold": "{{ params.threshold }}"}``;
        rendered for each run and passed to the execution. (templated, on the launch task)
    :param default_bucket: The S3 bucket for code and default outputs (default: the SDK's
        ``sagemaker-<region>-<account>``).
    :param max_parallel_steps: At most this many steps run at once (``ParallelismConfiguration``).
    :param tags: Tags put on the pipeline.
    :param aws_conn_id: The Airflow AWS connection (the amazon provider's), default ``aws_default``.
    :param region_name: The AWS region (default: the connection's).
    :param poll_interval: Seconds between status polls of the execution by the step tasks.
    :param pipeline_description: The pipeline description.
    :param start_from_trigger: Start step tasks straight in the triggerer (no worker at all). With False each
        step task starts on a worker for a moment and then defers.
    """

    pipeline_name: str | None = None
    role_arn: str | None = None
    parameters: Mapping[str, Any] = attrs.field(factory=dict)
    parameter_values: Mapping[str, Any] = attrs.field(factory=dict)
    default_bucket: str | None = None
    max_parallel_steps: int | None = None
    tags: Mapping[str, str] = attrs.field(factory=dict)
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    poll_interval: float = 10.0
    pipeline_description: str | None = None
    start_from_trigger: bool = True
    _closed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        outer = find_pipeline_group(self.parent_group)
        if outer is not None:
            raise PipelineDefinitionError(
                f"SageMaker pipeline group {self.group_id!r} is created inside SageMaker pipeline group "
                f"{outer.group_id!r}: a pipeline group is one SageMaker pipeline and cannot hold another; put the "
                "groups side by side (`first >> second`), or use a plain TaskGroup inside to organize steps"
            )
        super().__attrs_post_init__()

    # -- authoring helpers -----------------------------------------------------------------------------

    def parameter(self, name: str) -> ParameterRef:
        """Refer to the pipeline parameter ``name`` in step arguments (checked when the group closes)."""
        return ParameterRef(name)

    def parameter_specs(self) -> tuple[ParameterSpec, ...]:
        """The declared parameters, checked (names, types, defaults, enum values, how many)."""
        if not isinstance(self.parameters, Mapping):
            raise self._error(
                f"field 'parameters': expected a dict of names to defaults, got {self.parameters!r:.80}"
            )
        try:
            check_count(self.parameters)
        except ValueError as error:
            raise self._error(f"field 'parameters': {error}") from None
        specs = []
        for name, value in self.parameters.items():
            declared = value if isinstance(value, Parameter) else Parameter(default=value)
            try:
                specs.append(parameter_spec(name, declared))
            except ValueError as error:
                raise self._error(f"field {f'parameters[{name!r}]'!r}: {error}") from None
        return tuple(specs)

    def execution_parameters(self, values: Mapping[str, Any], *, rendered: bool = True) -> dict[str, str]:
        """``parameter_values`` as the strings an execution is started with, each checked against its
        declaration (type, length, enum values).

        :param values: The values, rendered for a run when ``rendered``; before rendering, templated values are
            skipped (the launch task checks them once rendered, before anything is created in AWS).
        """
        specs = {spec.name: spec for spec in self.parameter_specs()}
        texts: dict[str, str] = {}
        for name, value in values.items():
            field = f"parameter_values[{name!r}]"
            if name not in specs:
                raise self._error(
                    f"field {field!r} sets {name!r}, which is not declared in 'parameters' {sorted(specs)}"
                )
            if not rendered and is_unrendered(value):
                continue
            try:
                texts[name] = execution_value(specs[name], value)
            except ValueError as error:
                what = "rendered value " if rendered else ""
                raise self._error(f"field {field!r}: {what}{error}") from None
        return texts

    def step_tasks(self) -> list[SageMakerPipelineStepOperator]:
        """The step tasks of this group, in the order they were created."""
        from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator

        return [task for task in self if isinstance(task, SageMakerPipelineStepOperator)]

    @property
    def launch_task(self) -> SageMakerPipelineLaunchOperator:
        return self.dag.get_task(self.child_id(LAUNCH_TASK_ID))  # type: ignore[return-value]

    def resolved_pipeline_name(self) -> str:
        if self.pipeline_name:
            return self.pipeline_name
        return pipeline_name_for(self.dag.dag_id, self.group_id or "")

    # -- closing the group: validate and wire ------------------------------------------------------------

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
            if exc_type is None:
                self._close()
        finally:
            # Leave the TaskGroup context even when validation fails, or later tasks land in this group.
            super().__exit__(exc_type, exc_value, traceback)

    def _error(self, message: str) -> PipelineDefinitionError:
        return PipelineDefinitionError(f"SageMaker pipeline group {self.group_id!r}: {message}")

    def _close(self) -> None:
        from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator
        from airflow_provider_smpipe.operators.launch import SageMakerPipelineLaunchOperator

        steps: list[SageMakerPipelineStepOperator] = []
        for task in self:
            if isinstance(task, SageMakerPipelineStepOperator):
                steps.append(task)
            else:
                raise self._error(
                    f"task {task.task_id!r} is a {type(task).__name__}, not a SageMaker step operator; only "
                    "step operators (processing, training, condition, fail, SageMakerStepOperator) can be "
                    "part of a pipeline group. Put other tasks before or after the group."
                )
        if not steps:
            raise self._error("the group has no step tasks")
        self._check_group_fields()
        by_task_id = {task.task_id: task for task in steps}

        names: dict[str, str] = {}
        for task in steps:
            name = step_name_for(task.task_id, self.group_id or "")
            if name in names:
                raise self._error(
                    f"tasks {names[name]!r} and {task.task_id!r} both map to SageMaker step name {name!r}; "
                    "rename one of them"
                )
            names[name] = task.task_id
            task.step_name = name
            if self.start_from_trigger:
                task.enable_start_from_trigger()

        parameter_names = set(self.parameters)
        for task in steps:
            for field_name, value in task.reference_fields().items():
                for path, reference in iter_references(value, field_name):
                    self._check_reference(task, path, reference, by_task_id, parameter_names)
                    for upstream_id in reference.step_task_ids():
                        if upstream_id != task.task_id and upstream_id not in task.upstream_task_ids:
                            task.set_upstream(by_task_id[upstream_id])
        self._check_condition_branches(steps, by_task_id)
        self._check_condition_types(steps, by_task_id)
        self._check_no_edge_leaves_and_returns(steps)

        launch = SageMakerPipelineLaunchOperator(
            task_id=LAUNCH_TASK_ID,
            group_id=self.group_id or "",
            parameter_values=dict(self.parameter_values),
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            task_group=self,
            dag=self.dag,
        )
        step_ids = set(by_task_id)
        for task in steps:
            outside_upstream = [tid for tid in task.upstream_task_ids if tid not in step_ids]
            for upstream_id in outside_upstream:
                # An outside task upstream of a step must run before the pipeline starts: move the edge.
                upstream = self.dag.get_task(upstream_id)
                task.upstream_task_ids.discard(upstream_id)
                upstream.downstream_task_ids.discard(task.task_id)
                if upstream_id != launch.task_id:
                    launch.set_upstream(upstream)
        for task in steps:
            if not task.upstream_task_ids & step_ids:
                launch.set_downstream(task)
        self._closed = True

    def _check_group_fields(self) -> None:
        if not self.role_arn:
            raise self._error(
                "field 'role_arn' is required: the IAM role SageMaker runs the pipeline and its jobs with"
            )
        if not isinstance(self.role_arn, str) or not _ROLE_ARN.match(self.role_arn):
            raise self._error(
                f"field 'role_arn': {self.role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        try:
            name = self.resolved_pipeline_name()
        except ValueError as error:
            raise self._error(f"field 'pipeline_name': {error}; give pipeline_name explicitly") from None
        if not is_valid_pipeline_name(name):
            raise self._error(
                f"field 'pipeline_name': {name!r} is not a valid SageMaker pipeline name (letters, digits and "
                "single dashes, at most 256 characters, starting and ending with a letter or digit)"
            )
        if self.max_parallel_steps is not None and self.max_parallel_steps < 1:
            raise self._error("field 'max_parallel_steps' must be at least 1")
        unknown = set(self.parameter_values) - set(self.parameters)
        if unknown:
            raise self._error(
                f"field 'parameter_values' sets {sorted(unknown)}, which are not declared in 'parameters' "
                f"{sorted(self.parameters)}"
            )
        self.execution_parameters(self.parameter_values, rendered=False)

    def _check_reference(
        self,
        task: SageMakerPipelineStepOperator,
        path: str,
        reference: Reference,
        by_task_id: Mapping[str, SageMakerPipelineStepOperator],
        parameter_names: set[str],
    ) -> None:
        where = f"task {task.task_id!r} field {path!r}"
        if isinstance(reference, ParameterRef) and reference.name not in parameter_names:
            raise self._error(
                f"{where} refers to parameter {reference.name!r}, which the group does not declare "
                f"(parameters: {sorted(parameter_names)})"
            )
        for target_id in reference.step_task_ids():
            target = by_task_id.get(target_id)
            if target is None:
                other = find_pipeline_group(self._task_group_of(target_id))
                elsewhere = (
                    f"in group {other.group_id!r}" if other is not None else "not a step of this group"
                )
                raise self._error(
                    f"{where} refers to task {target_id!r}, which is {elsewhere}; a step can only refer to "
                    "steps of its own pipeline group"
                )
            if target_id == task.task_id:
                raise self._error(f"{where} refers to the step itself")
            if (
                isinstance(reference, StepOutputRef)
                and reference.output_name not in target.declared_outputs()
            ):
                raise self._error(
                    f"{where} refers to output {reference.output_name!r} of {target_id!r}, which has outputs "
                    f"{sorted(target.declared_outputs())}"
                )
            if isinstance(reference, PropertyFileRef) and reference.file_name not in (
                target.declared_property_files()
            ):
                raise self._error(
                    f"{where} refers to property file {reference.file_name!r} of {target_id!r}, which has "
                    f"property files {sorted(target.declared_property_files())}"
                )
            if isinstance(reference, ModelArtifactsRef) and not target.produces_model_artifacts:
                raise self._error(
                    f"{where} refers to the model artifacts of {target_id!r}, a step that writes none "
                    "(training and tuning steps do)"
                )
            if isinstance(reference, StepPropertyRef):
                try:
                    target.property_type(reference.path)
                except ValueError as error:
                    raise self._error(f"{where} reads {reference}: {error}") from None

    def _task_group_of(self, task_id: str) -> TaskGroup | None:
        task = self.dag.task_dict.get(task_id)
        return task.task_group if task is not None else None

    def _check_condition_branches(
        self,
        steps: list[SageMakerPipelineStepOperator],
        by_task_id: Mapping[str, SageMakerPipelineStepOperator],
    ) -> None:
        from airflow_provider_smpipe.operators.condition import SageMakerConditionStepOperator

        claimed: dict[str, str] = {}
        for task in steps:
            if not isinstance(task, SageMakerConditionStepOperator):
                continue
            for branch, ids in (("if_steps", task.if_steps), ("else_steps", task.else_steps)):
                for target_id in ids:
                    where = f"task {task.task_id!r} field {branch!r}"
                    if target_id not in by_task_id:
                        raise self._error(f"{where} names {target_id!r}, which is not a step of this group")
                    if target_id not in task.downstream_task_ids:
                        raise self._error(
                            f"{where} names {target_id!r}, which is not downstream of the condition; add "
                            f"`{task.task_id.rsplit('.', 1)[-1]} >> {target_id.rsplit('.', 1)[-1]}`"
                        )
                    if target_id in claimed:
                        raise self._error(
                            f"{where} names {target_id!r}, which is already a branch of {claimed[target_id]!r}"
                        )
                    claimed[target_id] = task.task_id

    def _check_condition_types(
        self,
        steps: list[SageMakerPipelineStepOperator],
        by_task_id: Mapping[str, SageMakerPipelineStepOperator],
    ) -> None:
        from airflow_provider_smpipe.model.condition_types import (
            KIND_OF_PARAMETER,
            KIND_OF_PROPERTY,
            check_condition_types,
            describe_literal,
        )
        from airflow_provider_smpipe.operators.condition import SageMakerConditionStepOperator

        parameter_types = {spec.name: spec.type for spec in self.parameter_specs()}

        def kind_of(operand: Any) -> str | None:
            if isinstance(operand, ParameterRef):
                return KIND_OF_PARAMETER.get(parameter_types.get(operand.name, ""))
            if isinstance(operand, StepPropertyRef) and operand.task_id in by_task_id:
                return KIND_OF_PROPERTY.get(by_task_id[operand.task_id].property_type(operand.path) or "")
            return None

        def describe(operand: Any) -> str:
            if isinstance(operand, ParameterRef):
                return f"{parameter_types.get(operand.name)} parameter {operand.name!r}"
            if isinstance(operand, Reference):
                kind = kind_of(operand)
                return f"{operand} (a {kind})" if kind in ("string", "number", "boolean") else str(operand)
            return describe_literal(operand)

        for task in steps:
            if isinstance(task, SageMakerConditionStepOperator):
                try:
                    check_condition_types(task.condition, kind_of, describe)
                except ValueError as error:
                    raise self._error(f"task {task.task_id!r} field 'conditions': {error}") from None

    def _check_no_edge_leaves_and_returns(self, steps: list[SageMakerPipelineStepOperator]) -> None:
        step_ids = {task.task_id for task in steps}
        for task in steps:
            for downstream_id in task.downstream_task_ids - step_ids:
                returning = self._first_step_reachable_from(downstream_id, step_ids)
                if returning is not None:
                    raise self._error(
                        f"the edge from step {task.task_id!r} to {downstream_id!r} leaves the group and comes "
                        f"back into it at {returning!r}; SageMaker runs the whole pipeline as one execution, so "
                        "an outside task cannot sit between two of its steps"
                    )

    def _first_step_reachable_from(self, task_id: str, step_ids: set[str]) -> str | None:
        seen: set[str] = set()
        stack = [task_id]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in step_ids:
                return current
            node = self.dag.task_dict.get(current)
            if node is not None:
                stack.extend(node.downstream_task_ids)
        return None

    def check_edge(self, step: SageMakerPipelineStepOperator, other: Any, *, other_is_upstream: bool) -> None:
        """Refuse edges made after the group closed that would not mean what they say."""
        if not self._closed:
            return
        step_ids = {task.task_id for task in self.step_tasks()}
        other_ids = [getattr(t, "task_id", None) for t in getattr(other, "roots", [other])]
        for other_id in other_ids:
            if other_id is None or other_id in step_ids or other_id == self.child_id(LAUNCH_TASK_ID):
                continue
            if other_is_upstream:
                raise self._error(
                    f"task {other_id!r} is outside the group but was made upstream of its step {step.task_id!r}; "
                    f"make it upstream of the whole group (`{other_id} >> {self.group_id}`), which runs before "
                    "the pipeline starts"
                )
            returning = self._first_step_reachable_from(other_id, step_ids)
            if returning is not None:
                raise self._error(
                    f"the edge from step {step.task_id!r} to {other_id!r} leaves the group and comes back into "
                    f"it at {returning!r}"
                )


def sagemaker_pipeline_task_group(
    python_callable: Callable[..., Any] | None = None, **group_kwargs: Any
) -> Any:
    """Decorator form of :class:`SageMakerPipelineTaskGroup` (``@task_group`` cannot build a subclass).

    The decorated function receives the group as its first argument (to call ``group.parameter(...)``) and
    creates the step tasks; calling it returns the closed group, ready for ``start >> pipeline() >> end``::

        @sagemaker_pipeline_task_group(role_arn=ROLE, parameters={"Threshold": 0.8})
        def training(group): ...
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., SageMakerPipelineTaskGroup]:
        @functools.wraps(function)
        def factory(*args: Any, **kwargs: Any) -> SageMakerPipelineTaskGroup:
            options = {"group_id": function.__name__, **group_kwargs}
            group = SageMakerPipelineTaskGroup(**options)
            with group:
                function(group, *args, **kwargs)
            return group

        return factory

    if python_callable is not None:
        return decorate(python_callable)
    return decorate
