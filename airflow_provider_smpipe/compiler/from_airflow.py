"""Airflow tasks of a closed pipeline group -> the plain pipeline model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.model.spec import PipelineSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.task_group import SageMakerPipelineTaskGroup


def build_pipeline_spec(group: SageMakerPipelineTaskGroup, context: Any | None = None) -> PipelineSpec:
    """Translate the group's step tasks into a :class:`PipelineSpec`.

    :param group: A closed SageMakerPipelineTaskGroup.
    :param context: The Airflow context of a run; when given, each step task's templated fields are rendered
        with it first (this mutates the task objects, which belong to the calling task's parsed DAG).
    """
    from airflow_provider_smpipe.operators.condition import SageMakerConditionStepOperator

    steps = group.step_tasks()
    if context is not None:
        for task in steps:
            task.render_template_fields(context)
    names = {task.task_id: task.step_name for task in steps}
    branch_owner = {
        target: task.task_id
        for task in steps
        if isinstance(task, SageMakerConditionStepOperator)
        for target in (*task.if_steps, *task.else_steps)
    }
    specs = []
    for task in steps:
        upstream = sorted(
            names[tid]
            for tid in task.upstream_task_ids
            if tid in names and branch_owner.get(task.task_id) != tid
        )
        specs.append(task.to_step_spec(name=task.step_name, depends_on=tuple(upstream)))
    return PipelineSpec(
        name=group.resolved_pipeline_name(),
        role_arn=str(group.role_arn),
        steps=tuple(specs),
        parameters=group.parameter_specs(),
        default_bucket=group.default_bucket,
        max_parallel_steps=group.max_parallel_steps,
        tags=tuple(sorted((str(k), str(v)) for k, v in group.tags.items())),
        description=group.pipeline_description,
    )
