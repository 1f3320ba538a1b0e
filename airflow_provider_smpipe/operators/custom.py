"""The escape hatch: any SageMaker SDK step as an Airflow task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.steps.custom import CustomStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.compiler.context import CompileContext


class SageMakerStepOperator(SageMakerPipelineStepOperator):
    """Any step the SageMaker SDK can build: EMR, checks, endpoints, ForEach, function steps... (docs/escape-hatch.md
    has the contract and an example per step type).

    ``step_factory(ctx)`` runs when the pipeline is compiled (in the launch task or the ``render`` command, never at
    DAG parse time), so it may import the SDK, inside the factory. ``ctx`` gives ``ctx.session`` (a
    ``PipelineSession``), ``ctx.role_arn``, ``ctx.default_bucket``, ``ctx.step_name`` (the name the returned step
    must have), ``ctx.parameter(name)``, ``ctx.step(task)`` (another step's SDK object) and
    ``ctx.resolve(reference)`` (an SDK expression).

    :param task_id: The task id; the step name is derived from it.
    :param step_factory: A callable taking the compile context and returning one SDK step named
        ``ctx.step_name``.
    :param upstream_references: References the factory reads (they add dependency edges and are checked).
    """

    def __init__(
        self,
        *,
        step_factory: Callable[[CompileContext], Any],
        upstream_references: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(step_factory):
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field 'step_factory': expected a callable returning a SageMaker SDK "
                f"step, got {type(step_factory).__name__}"
            )
        self.step_factory = step_factory
        self.upstream_references = list(upstream_references or ())

    def reference_fields(self) -> dict[str, Any]:
        return {"upstream_references": self.upstream_references}

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> CustomStepSpec:
        return CustomStepSpec(**self.common_spec_fields(name, depends_on), factory=self.step_factory)
