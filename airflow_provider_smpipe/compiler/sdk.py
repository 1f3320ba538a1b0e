"""The plain pipeline model -> SageMaker SDK 3.x objects -> the pipeline definition JSON.

The only module that imports the SageMaker SDK, inside functions: it runs in the launch task (and in the
``render`` command and tests), never at DAG parse time or in the triggerer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.errors import sdk_error_summary
from airflow_provider_smpipe.compiler.session import (
    default_bucket_name,
    make_pipeline_session,
    resolve_default_bucket,
    tree_hash,
)
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.references import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    ExecutionVariableRef,
    In,
    JoinRef,
    ModelArtifactsRef,
    Not,
    ParameterRef,
    PropertyFileRef,
    Reference,
    StepOutputRef,
    StepPropertyRef,
)
from airflow_provider_smpipe.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import boto3

    from airflow_provider_smpipe.model.spec import ParameterSpec, PipelineSpec, RetrySpec, StepSpec

log = logging.getLogger(__name__)

__all__ = [
    "MODEL_ARTIFACTS",
    "STEP_BUILDERS",
    "PipelineBuilder",
    "compile_definition",
    "make_pipeline_session",
    "resolve_default_bucket",
    "tree_hash",
]


@contextlib.contextmanager
def _sdk_environment(endpoint_url: str | None, region_name: str | None) -> Iterator[None]:
    """Environment for the SDK while it compiles.

    - ``SAGEMAKER_VALIDATE_ROLE=false``: SageMaker checks the role itself when the pipeline is created; the
      SDK's client-side check needs ``iam:SimulatePrincipalPolicy`` and several IAM calls per training step.
    - ``AWS_ENDPOINT_URL``: the SDK builds its own clients from the boto3 session, so the Airflow connection's
      ``endpoint_url`` (e.g. the local backend) reaches them only through botocore's environment setting.
    - ``AWS_DEFAULT_REGION``: importing ``sagemaker.mlops`` creates a boto3 client and fails without a region
      in the environment, even when the session has one (from the Airflow connection).
    """
    overrides = {"SAGEMAKER_VALIDATE_ROLE": "false"}
    if region_name:
        overrides["AWS_DEFAULT_REGION"] = region_name
    if endpoint_url:
        overrides["AWS_ENDPOINT_URL"] = endpoint_url
    previous = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    sdk_logger = logging.getLogger("sagemaker")
    level = sdk_logger.level
    sdk_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        sdk_logger.setLevel(level)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def compile_definition(
    spec: PipelineSpec, boto_session: boto3.Session, endpoint_url: str | None = None
) -> str:
    """Compile ``spec`` into the pipeline definition JSON, uploading step code to S3 as the SDK does.

    Nothing is created in AWS until the whole definition is built and checked: the SDK's uploads are held back
    and Lambda functions are not deployed until then (the bucket, the code and the functions are created last).
    An error in any step, the SDK's own validation errors included, is raised as a
    :class:`PipelineDefinitionError` naming the task.

    :param spec: The pipeline model.
    :param boto_session: The AWS session (credentials and region) the SDK uses.
    :param endpoint_url: An AWS-compatible endpoint to use instead of AWS (the connection's ``endpoint_url``).
    """
    with _sdk_environment(endpoint_url, boto_session.region_name):
        if spec.default_bucket is None:
            spec = dataclasses.replace(spec, default_bucket=default_bucket_name(boto_session, endpoint_url))
        builder = PipelineBuilder(spec, boto_session)
        definition = builder.render(builder.build())
        builder.check_undeclared_step_references(json.loads(definition))
        builder.session.publish()
    return definition


#: SDK step builders by spec class: ``compiler/steps/<kind>.py`` registers ``build(spec, builder) -> SDK step``.
STEP_BUILDERS: Registry[type, Callable[[Any, PipelineBuilder], Any]] = Registry(
    "SDK step builder", "airflow_provider_smpipe.compiler.steps"
)

#: How a reference to a step's model artifacts (``ModelArtifactsRef``) becomes a pipeline variable, by spec
#: class: ``compiler/steps/<kind>.py`` registers ``resolve(spec, reference, builder)`` for the step kinds that
#: write a ``model.tar.gz`` (training: its job's; tuning: one of its best training jobs').
MODEL_ARTIFACTS: Registry[type, Callable[[Any, ModelArtifactsRef, PipelineBuilder], Any]] = Registry(
    "model artifacts resolver", "airflow_provider_smpipe.compiler.steps"
)


class PipelineBuilder:
    """Builds the SDK pipeline of one :class:`PipelineSpec`; step builders use its helpers.

    :ivar spec: The pipeline model.
    :ivar session: The SDK ``PipelineSession`` (content-addressed uploads).
    :ivar bucket: The default bucket.
    :ivar steps_by_task: SDK step objects built so far, by Airflow task id.
    :ivar property_files: SDK ``PropertyFile`` objects by (task id, file name).
    :ivar specs_by_task: The step specs by Airflow task id.
    """

    def __init__(self, spec: PipelineSpec, boto_session: boto3.Session) -> None:
        from sagemaker.core.workflow import parameters

        self.spec = spec
        self.session = make_pipeline_session(boto_session, spec.default_bucket, spec.name)
        self.bucket: str = self.session.default_bucket()
        self.steps_by_task: dict[str, Any] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        self.parameters = {p.name: self._parameter(p, parameters) for p in spec.parameters}
        self.names = {step.task_id: step.name for step in spec.steps}
        self.specs_by_task = {step.task_id: step for step in spec.steps}

    @staticmethod
    def _parameter(spec: ParameterSpec, parameters: Any) -> Any:
        cls = {
            "String": parameters.ParameterString,
            "Integer": parameters.ParameterInteger,
            "Float": parameters.ParameterFloat,
            "Boolean": parameters.ParameterBoolean,
        }[spec.type]
        kwargs: dict[str, Any] = {"name": spec.name}
        if spec.default is not None:
            kwargs["default_value"] = spec.default
        if spec.enum_values and spec.type == "String":
            kwargs["enum_values"] = list(spec.enum_values)
        return cls(**kwargs)

    # -- order: a step's SDK object must exist before anything refers to it ---------------------------------

    def _build_order(self) -> list[StepSpec]:
        by_name = {step.name: step for step in self.spec.steps}
        before: dict[str, set[str]] = {step.name: set(step.depends_on) for step in self.spec.steps}
        for step in self.spec.steps:
            for reference in _references_of(step):
                before[step.name].update(self.names[t] for t in reference.step_task_ids())
            # A step that holds others (a condition's branches) is built after them.
            for target in step.nested_task_ids():
                before[step.name].add(self.names[target])
                before[self.names[target]].discard(step.name)
        order: list[StepSpec] = []
        done: set[str] = set()
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise PipelineDefinitionError(f"pipeline {self.spec.name!r}: steps form a cycle at {name!r}")
            visiting.add(name)
            for dependency in sorted(before[name]):
                visit(dependency)
            visiting.discard(name)
            done.add(name)
            order.append(by_name[name])

        for step in self.spec.steps:
            visit(step.name)
        return order

    def build(self) -> Any:
        """The SDK ``Pipeline`` of the spec. Errors the SDK raises while building a step (pydantic validation,
        botocore parameter checks...) become a :class:`PipelineDefinitionError` naming the task."""
        from sagemaker.mlops.workflow.pipeline import Pipeline

        nested: set[str] = set()
        for step in self._build_order():
            builder = STEP_BUILDERS.get(type(step))
            if builder is None:
                raise PipelineDefinitionError(
                    f"task {step.task_id!r}: no SDK builder for step kind {type(step).__name__}"
                )
            with _step_errors(step):
                self.steps_by_task[step.task_id] = builder(step, self)
            nested.update(step.nested_task_ids())
        top_level = [self.steps_by_task[s.task_id] for s in self.spec.steps if s.task_id not in nested]
        return Pipeline(
            name=self.spec.name,
            parameters=list(self.parameters.values()),
            steps=top_level,
            sagemaker_session=self.session,
        )

    def render(self, pipeline: Any) -> str:
        """The definition JSON of the built ``pipeline``; an SDK error while a step renders its request names
        that step's task."""
        try:
            return str(pipeline.definition())
        except PipelineDefinitionError:
            raise
        except Exception as error:
            # Which step: render each alone (nothing is published after a failure, so their uploads are moot).
            for step in self.spec.steps:
                sdk_step = self.steps_by_task.get(step.task_id)
                if sdk_step is not None and hasattr(sdk_step, "to_request"):
                    with _step_errors(step):
                        sdk_step.to_request()
            raise PipelineDefinitionError(
                f"pipeline {self.spec.name!r}: the SageMaker SDK could not render the definition: "
                f"{sdk_error_summary(error)}"
            ) from error

    # -- upstream steps: what a step may read ------------------------------------------------------------

    def upstream_task_ids(self, step: StepSpec) -> set[str]:
        """Task ids of every step upstream of ``step``: edges, references, and a branch's condition step."""
        task_of = {s.name: s.task_id for s in self.spec.steps}
        by_task = {s.task_id: s for s in self.spec.steps}
        owner = {target: s.task_id for s in self.spec.steps for target in s.nested_task_ids()}

        def direct(current: StepSpec) -> set[str]:
            ids = {task_of[name] for name in current.depends_on if name in task_of}
            ids.update(t for reference in _references_of(current) for t in reference.step_task_ids())
            if current.task_id in owner:
                ids.add(owner[current.task_id])
            return ids

        seen: set[str] = set()
        stack = list(direct(step))
        while stack:
            task_id = stack.pop()
            if task_id in seen or task_id not in by_task:
                continue
            seen.add(task_id)
            stack.extend(direct(by_task[task_id]))
        seen.discard(step.task_id)
        return seen

    def check_undeclared_step_references(self, definition: dict[str, Any]) -> None:
        """Refuse an escape-hatch step whose definition reads (``Steps.<x>``) or depends on a step of the group
        that is not upstream of its task: Airflow would not know the edge SageMaker follows."""
        from airflow_provider_smpipe.model.steps.custom import CustomStepSpec

        names = {s.name: s for s in self.spec.steps}
        rendered: dict[str, Any] = {}
        _collect_steps(definition.get("Steps") or [], rendered)
        for step in self.spec.steps:
            if not isinstance(step, CustomStepSpec):
                continue
            upstream = self.upstream_task_ids(step)
            allowed = {name for name, other in names.items() if other.task_id in upstream}
            own = [
                name
                for name in rendered
                if name == step.name or (name.startswith(step.name + "-") and name not in names)
            ]
            for name in own:
                body = rendered[name]
                read = set(_STEP_REFERENCE.findall(json.dumps(body)))
                read.update(str(d) for d in body.get("DependsOn") or [])
                bad = sorted(x for x in read if x in names and x not in allowed and x != step.name)
                if bad:
                    tasks = [names[x].task_id for x in bad]
                    raise PipelineDefinitionError(
                        f"task {step.task_id!r} field 'upstream_references': the step the factory built reads or "
                        f"depends on {tasks}, which are not upstream of {step.task_id!r}; declare what the "
                        "factory reads in 'upstream_references' (or add the Airflow edge), so Airflow runs the "
                        "tasks in the order SageMaker does"
                    )

    # -- helpers for step builders -----------------------------------------------------------------------

    def step_kwargs(self, step: StepSpec) -> dict[str, Any]:
        """``name``, ``depends_on``, ``display_name`` and ``description`` as every SDK step takes them."""
        return {
            "name": step.name,
            "depends_on": list(step.depends_on) or None,
            "display_name": step.display_name,
            "description": step.description,
        }

    def cache_config(self, step: StepSpec) -> Any:
        """The SDK ``CacheConfig`` of ``step`` (None when it is not cached)."""
        from sagemaker.mlops.workflow.steps import CacheConfig

        if step.cache is None:
            return None
        return CacheConfig(enable_caching=True, expire_after=step.cache.expire_after)

    def retry_policies(self, step: StepSpec) -> list[Any] | None:
        """The SDK retry policies of ``step``."""
        return _retries(step.retry_policies)

    def default_output_uri(self, step: StepSpec, output_name: str) -> Any:
        """``s3://<bucket>/<pipeline>/<execution id>/<step>/<output>``: where unnamed outputs go."""
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return Join(
            on="/",
            values=[
                "s3:/",
                self.bucket,
                self.spec.name,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step.name,
                output_name,
            ],
        )

    def sdk_step(self, task_id: str) -> Any:
        """The SDK object of an already built step."""
        return self.steps_by_task[task_id]

    # -- values ------------------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """A model value as the SDK wants it: references become pipeline variables."""
        from sagemaker.core.workflow.execution_variables import ExecutionVariable
        from sagemaker.core.workflow.functions import Join, JsonGet

        if isinstance(value, ParameterRef):
            return self.parameters[value.name]
        if isinstance(value, ExecutionVariableRef):
            return ExecutionVariable(value.name)
        if isinstance(value, JoinRef):
            return Join(on=value.on, values=[self.resolve(v) for v in value.values])
        if isinstance(value, StepOutputRef):
            step = self.steps_by_task[value.task_id]
            return step.properties.ProcessingOutputConfig.Outputs[value.output_name].S3Output.S3Uri
        if isinstance(value, ModelArtifactsRef):
            spec = self.specs_by_task[value.task_id]
            resolver = MODEL_ARTIFACTS.get(type(spec))
            if resolver is None:
                raise PipelineDefinitionError(
                    f"{value}: a {spec.step_type or 'custom'} step writes no model artifacts"
                )
            return resolver(spec, value, self)
        if isinstance(value, PropertyFileRef):
            step = self.steps_by_task[value.task_id]
            return JsonGet(
                step_name=step.name,
                property_file=self.property_files[(value.task_id, value.file_name)],
                json_path=value.json_path,
            )
        if isinstance(value, StepPropertyRef):
            return _walk_properties(self.steps_by_task[value.task_id].properties, value.path, value)
        if isinstance(value, Reference):
            raise PipelineDefinitionError(f"unsupported reference {value!r}")
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.resolve(v) for v in value]
        return value

    def condition(self, condition: Condition, top_level: bool = False) -> list[Any]:
        from sagemaker.core.workflow import conditions as c

        if isinstance(condition, Comparison):
            cls = {
                "Equals": c.ConditionEquals,
                "GreaterThan": c.ConditionGreaterThan,
                "GreaterThanOrEqualTo": c.ConditionGreaterThanOrEqualTo,
                "LessThan": c.ConditionLessThan,
                "LessThanOrEqualTo": c.ConditionLessThanOrEqualTo,
            }[condition.type]
            return [cls(left=self.resolve(condition.left), right=self.resolve(condition.right))]
        if isinstance(condition, In):
            return [
                c.ConditionIn(value=self.resolve(condition.value), in_values=self.resolve(condition.choices))
            ]
        if isinstance(condition, Not):
            (inner,) = self.condition(condition.expression)
            return [c.ConditionNot(expression=inner)]
        if isinstance(condition, AnyOf):
            return [
                c.ConditionOr(conditions=[x for sub in condition.conditions for x in self.condition(sub)])
            ]
        if isinstance(condition, AllOf):
            if top_level:
                return [x for sub in condition.conditions for x in self.condition(sub)]
            # SageMaker has no nested "and": not(any(not a, not b)) says the same.
            negated = [
                c.ConditionNot(expression=x) for sub in condition.conditions for x in self.condition(sub)
            ]
            return [c.ConditionNot(expression=c.ConditionOr(conditions=negated))]
        raise PipelineDefinitionError(f"unsupported condition {condition!r}")


_STEP_REFERENCE = re.compile(r"Steps\.([A-Za-z0-9_-]+)")


@contextlib.contextmanager
def _step_errors(step: StepSpec) -> Iterator[None]:
    """Errors raised while the SDK builds or renders ``step``, as a one-line error naming its task."""
    try:
        yield
    except PipelineDefinitionError:
        raise
    except Exception as error:
        from airflow_provider_smpipe.model.steps.custom import CustomStepSpec

        if isinstance(step, CustomStepSpec):
            message = f" field 'step_factory': the factory's step failed: {sdk_error_summary(error)}"
        else:
            message = f": the SageMaker SDK refused the step: {sdk_error_summary(error)}"
        raise PipelineDefinitionError(f"task {step.task_id!r}{message}") from error


def _collect_steps(steps: list[Any], out: dict[str, Any]) -> None:
    """Every step of a definition by name, a condition's branches included (its own body without them)."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        arguments = step.get("Arguments") or {}
        if step.get("Type") == "Condition":
            _collect_steps(arguments.get("IfSteps") or [], out)
            _collect_steps(arguments.get("ElseSteps") or [], out)
            step = {**step, "Arguments": {"Conditions": arguments.get("Conditions")}}
        out[str(step.get("Name"))] = step


def _retries(specs: tuple[RetrySpec, ...]) -> list[Any] | None:
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    policies: list[Any] = []
    for spec in specs:
        common = {
            "backoff_rate": spec.backoff_rate,
            "interval_seconds": spec.interval_seconds,
            "max_attempts": spec.max_attempts,
            "expire_after_mins": spec.expire_after_mins,
        }
        if spec.kind == "step":
            # These SDK enums' metaclass maps any call to the default member: look members up by value.
            types = [_enum_member(StepExceptionTypeEnum, t) for t in spec.exception_types]
            policies.append(StepRetryPolicy(exception_types=types, **common))
        else:
            job_types = [_enum_member(SageMakerJobExceptionTypeEnum, t) for t in spec.exception_types]
            policies.append(SageMakerJobStepRetryPolicy(exception_types=job_types, **common))
    return policies or None


def _enum_member(enum: Any, value: str) -> Any:
    return next(member for member in enum if member.value == value)


def _references_of(step: StepSpec) -> Iterator[Reference]:
    from dataclasses import fields

    from airflow_provider_smpipe.model.references import iter_references

    for item in fields(step):
        for _, reference in iter_references(_plain(getattr(step, item.name))):
            yield reference


def _plain(value: Any) -> Any:
    """Nested spec dataclasses as tuples, so ``iter_references`` can walk them."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value) and not isinstance(value, type) and not isinstance(value, Reference | Condition):
        return tuple(_plain(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


_PATH_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


def _walk_properties(properties: Any, path: str, reference: StepPropertyRef) -> Any:
    """Follow ``"ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"`` through SDK properties."""
    current = properties
    position = 0
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if match is None:
            raise PipelineDefinitionError(
                f"{reference}: cannot parse the property path at {path[position:]!r}"
            )
        attribute, key, key2, index = match.groups()
        try:
            if attribute is not None:
                current = getattr(current, attribute)
            else:
                current = current[key if key is not None else key2 if key2 is not None else int(index)]
        except (AttributeError, KeyError, IndexError, TypeError):
            raise PipelineDefinitionError(
                f"{reference}: {path[: match.end()]!r} is not a property of that step"
            ) from None
        position = match.end()
    return current
