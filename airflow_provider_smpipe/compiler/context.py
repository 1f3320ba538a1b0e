"""What a custom step factory sees while the pipeline is compiled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Reference


@dataclass
class CompileContext:
    """Handed to ``SageMakerStepOperator(step_factory=...)``.

    The factory may read only steps upstream of its own task (Airflow edges, or references declared in
    ``upstream_references``): anything else fails the compilation with an error naming the task.

    :ivar session: The SDK ``PipelineSession`` (pass it as ``sagemaker_session`` to SDK objects).
    :ivar role_arn: The group's IAM role.
    :ivar default_bucket: The S3 bucket for code and outputs.
    :ivar pipeline_name: The pipeline's name.
    :ivar step_name: The name the returned step must have.
    """

    session: Any
    role_arn: str
    default_bucket: str
    pipeline_name: str
    step_name: str = ""
    task_id: str = ""
    _parameters: dict[str, Any] = field(default_factory=dict)
    _steps: dict[str, Any] = field(default_factory=dict)
    _resolver: Any = None
    #: Task ids of the steps upstream of this one (None: no check).
    _upstream: frozenset[str] | None = None

    def parameter(self, name: str) -> Any:
        """The SDK parameter object of the group's parameter ``name``."""
        if name not in self._parameters:
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field 'step_factory': ctx.parameter({name!r}) names no parameter of "
                f"the group (parameters: {sorted(self._parameters)})"
            )
        return self._parameters[name]

    def step(self, task_or_id: Any) -> Any:
        """The SDK step object of another step task of the group, upstream of this one."""
        task_id = task_or_id if isinstance(task_or_id, str) else task_or_id.task_id
        self._check_upstream(task_id, f"ctx.step({task_id!r})")
        return self._steps[task_id]

    def resolve(self, value: Reference | Any) -> Any:
        """A reference as an SDK pipeline variable (plain values are returned as they are)."""
        from airflow_provider_smpipe.model.references import iter_references

        for _, reference in iter_references(value):
            for task_id in reference.step_task_ids():
                self._check_upstream(task_id, f"ctx.resolve({reference})")
        return self._resolver(value)

    def _check_upstream(self, task_id: str, what: str) -> None:
        if self._upstream is None or (task_id in self._upstream and task_id in self._steps):
            return
        raise PipelineDefinitionError(
            f"task {self.task_id!r} field 'step_factory': {what} reads step {task_id!r}, which is not upstream "
            f"of {self.task_id!r}; declare what the factory reads in field 'upstream_references' (e.g. "
            "upstream_references=[other.step_property('ProcessingJobName')]) or add the Airflow edge "
            "`other >> this`, so the step runs after it"
        )
