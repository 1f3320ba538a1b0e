"""A SageMaker condition step as an Airflow task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.references import AllOf, AnyOf, Condition, Not, all_of
from airflow_provider_smpipe.model.steps.condition import ConditionStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator

BranchArg = Sequence[Any] | None


def _task_id_of(task_or_id: Any) -> str:
    return task_or_id if isinstance(task_or_id, str) else str(task_or_id.task_id)


class SageMakerConditionStepOperator(SageMakerPipelineStepOperator):
    """Choose a branch of the pipeline at run time.

    The if- and else-branches are step tasks downstream of this one (``check >> [register, fail]``). In Airflow
    the task of the untaken branch ends skipped, like a branch operator's.

    :param task_id: The task id; the step name is derived from it.
    :param conditions: One condition or a list that must all hold, built from references:
        ``evaluate.property_value("evaluation", "auc") >= group.parameter("MinAuc")``, combined with
        ``&``, ``|``, ``~`` (or ``all_of``, ``any_of``, ``not_``); equality with ``ref.eq(value)``.
    :param if_steps: Step tasks (or their task ids) run when the conditions hold.
    :param else_steps: Step tasks (or their task ids) run otherwise.
    """

    ui_color = "#fdf3d0"

    def __init__(
        self,
        *,
        conditions: Condition | Sequence[Condition],
        if_steps: BranchArg = None,
        else_steps: BranchArg = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"task {self.task_id!r} field 'conditions'"
        if isinstance(conditions, Condition):
            items: list[Any] = [conditions]
        elif isinstance(conditions, Sequence) and not isinstance(conditions, str):
            items = list(conditions)
        else:
            items = [conditions]
        if not items:
            raise PipelineDefinitionError(f"{where}: at least one is needed")
        for item in items:
            _check_condition(where, item)
        self.condition: Condition = all_of(*items)
        self.if_steps = [_task_id_of(t) for t in (if_steps or ())]
        self.else_steps = [_task_id_of(t) for t in (else_steps or ())]
        if not self.if_steps and not self.else_steps:
            raise PipelineDefinitionError(
                f"task {self.task_id!r}: a condition step needs 'if_steps' or 'else_steps'"
            )

    def reference_fields(self) -> Mapping[str, Any]:
        return {"conditions": self.condition}

    def property_type(self, path: str) -> str | None:
        """A condition step's one property is its ``Outcome`` ("True" or "False")."""
        if path != "Outcome":
            raise ValueError(f"a condition step's only property is 'Outcome', not {path!r}")
        return "string"

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> ConditionStepSpec:
        return ConditionStepSpec(
            **self.common_spec_fields(name, depends_on),
            condition=self.condition,
            if_steps=tuple(self.if_steps),
            else_steps=tuple(self.else_steps),
        )


def _check_condition(where: str, condition: Any) -> None:
    """Refuse anything in a condition tree that is not a condition, above all the ``bool`` Python's ``==`` and
    ``!=`` give on references (they compare the references themselves)."""
    if isinstance(condition, bool):
        raise PipelineDefinitionError(
            f"{where}: got {condition!r}, not a condition: `==` and `!=` compare references in Python; write "
            "ref.eq(value) or ref.ne(value) for SageMaker to compare values"
        )
    if isinstance(condition, AllOf | AnyOf):
        for inner in condition.conditions:
            _check_condition(where, inner)
    elif isinstance(condition, Not):
        _check_condition(where, condition.expression)
    elif not isinstance(condition, Condition):
        raise PipelineDefinitionError(
            f"{where}: expected a condition built from references (e.g. ref >= 0.8 or ref.eq('x')), got "
            f"{type(condition).__name__} {condition!r:.80}"
        )
