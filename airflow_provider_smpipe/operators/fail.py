"""A SageMaker fail step as an Airflow task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.model.steps.fail import FailStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_smpipe.model.references import Operand


class SageMakerFailStepOperator(SageMakerPipelineStepOperator):
    """End the pipeline execution as Failed with a message (usually on a condition's else-branch).

    :param task_id: The task id; the step name is derived from it.
    :param error_message: The message; a reference or ``join(...)`` of references is allowed. (templated)
    """

    template_fields: Sequence[str] = ("error_message",)
    ui_color = "#f7d4d4"

    def __init__(self, *, error_message: Operand | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error_message = error_message

    def reference_fields(self) -> Mapping[str, Any]:
        return {"error_message": self.error_message}

    def property_type(self, path: str) -> str | None:
        """A fail step has no properties: the execution ends with it."""
        raise ValueError(f"a fail step has no properties (asked for {path!r})")

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> FailStepSpec:
        return FailStepSpec(**self.common_spec_fields(name, depends_on), error_message=self.error_message)
