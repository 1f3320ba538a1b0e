"""What a custom step factory sees while the pipeline is compiled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Reference


@dataclass
class CompileContext:
    """Handed to ``SageMakerStepOperator(step_factory=...)``.

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
    _parameters: dict[str, Any] = field(default_factory=dict)
    _steps: dict[str, Any] = field(default_factory=dict)
    _resolver: Any = None

    def parameter(self, name: str) -> Any:
        """The SDK parameter object of the group's parameter ``name``."""
        return self._parameters[name]

    def step(self, task_or_id: Any) -> Any:
        """The SDK step object of another step task of the group (compiled before this one)."""
        task_id = task_or_id if isinstance(task_or_id, str) else task_or_id.task_id
        return self._steps[task_id]

    def resolve(self, value: Reference | Any) -> Any:
        """A reference as an SDK pipeline variable (plain values are returned as they are)."""
        return self._resolver(value)
