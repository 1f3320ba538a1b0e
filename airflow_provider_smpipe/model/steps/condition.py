"""The plain model of a condition step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Condition


@dataclass(frozen=True)
class ConditionStepSpec(StepSpec):
    step_type: ClassVar[str] = "Condition"

    condition: Condition | None = None
    if_steps: tuple[str, ...] = ()
    else_steps: tuple[str, ...] = ()

    def nested_task_ids(self) -> tuple[str, ...]:
        return (*self.if_steps, *self.else_steps)
