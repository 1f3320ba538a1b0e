"""Escape hatch -> whatever SDK step the user's factory returns.

The factory runs when the pipeline is compiled (the ``render`` command or the launch task, before anything is
created in AWS), never at DAG parse time, since it may import the SDK: the checks here that the factory reads
only upstream steps happen then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.context import CompileContext
from airflow_provider_smpipe.compiler.sdk import STEP_BUILDERS
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.custom import CustomStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder


@STEP_BUILDERS.register(CustomStepSpec)
def build_custom(step: CustomStepSpec, builder: PipelineBuilder) -> Any:
    assert step.factory is not None
    context = CompileContext(
        session=builder.session,
        role_arn=builder.spec.role_arn,
        default_bucket=builder.bucket,
        pipeline_name=builder.spec.name,
        step_name=step.name,
        task_id=step.task_id,
        _parameters=builder.parameters,
        _steps=builder.steps_by_task,
        _resolver=builder.resolve,
        _upstream=frozenset(builder.upstream_task_ids(step)),
    )
    built = step.factory(context)
    where = f"task {step.task_id!r} field 'step_factory'"
    if built is None:
        raise PipelineDefinitionError(
            f"{where}: the factory returned None; it must return one SageMaker SDK step named ctx.step_name "
            f"({step.name!r}), e.g. `return ProcessingStep(name=ctx.step_name, step_args=...)`"
        )
    from sagemaker.mlops.workflow.step_collections import StepCollection

    if isinstance(built, StepCollection):
        # Its steps are named "<name>-..."; no step of the task's name would ever run for the task to mirror.
        raise PipelineDefinitionError(
            f"{where}: the factory returned {type(built).__name__}, a collection of steps "
            f"{[getattr(s, 'name', None) for s in built.steps]}; return one step named ctx.step_name "
            f"({step.name!r}) and build each other step in a task of its own"
        )
    if getattr(built, "name", None) != step.name:
        raise PipelineDefinitionError(
            f"{where}: the factory returned {type(built).__name__} named {getattr(built, 'name', None)!r}; name "
            f"it ctx.step_name ({step.name!r})"
        )
    if step.depends_on:
        existing = [d if isinstance(d, str) else d.name for d in (built.depends_on or [])]
        built.depends_on = sorted(set(existing) | set(step.depends_on))
    # The task's display name and description, as on every other step kind (the factory's own win).
    if step.display_name and not getattr(built, "display_name", None):
        built.display_name = step.display_name
    if step.description and not getattr(built, "description", None):
        built.description = step.description
    return built
