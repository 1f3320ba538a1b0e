"""Escape hatch -> whatever SDK step the user's factory returns."""

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
        _parameters=builder.parameters,
        _steps=builder.steps_by_task,
        _resolver=builder.resolve,
    )
    built = step.factory(context)
    if getattr(built, "name", None) != step.name:
        raise PipelineDefinitionError(
            f"task {step.task_id!r} field 'step_factory': the factory returned "
            f"{type(built).__name__} named {getattr(built, 'name', None)!r}; name it ctx.step_name "
            f"({step.name!r})"
        )
    if step.depends_on:
        existing = [d if isinstance(d, str) else d.name for d in (built.depends_on or [])]
        built.depends_on = sorted(set(existing) | set(step.depends_on))
    return built
