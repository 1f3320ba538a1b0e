"""Shared parts of the SageMaker operations the local backend answers itself (moto serves the rest).

Each module of this package registers its operations in :data:`OPERATIONS` with ``@operation("Name")``; a
handler takes ``(api, body, account, region)`` and returns the response dict, or ``None`` to let moto answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.errors import not_found, validation_error
from airflow_provider_smpipe.registry import Registry

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.executor import Executor
    from airflow_provider_smpipe.local.state import Execution, Store


@dataclass
class ApiContext:
    """What handlers work on: the backend's records and its executor."""

    store: Store
    executor: Executor

    def pipeline(self, name_or_arn: str, account: str, region: str) -> Any:
        """moto's record of a pipeline, by name or ARN."""
        name = name_or_arn.split(":pipeline/")[-1] if name_or_arn.startswith("arn:") else name_or_arn
        pipeline = moto_sagemaker(account, region).pipelines.get(name)
        if pipeline is None:
            raise not_found(f"Pipeline '{name_or_arn}' does not exist.")
        return pipeline

    def execution(self, arn: str | None) -> Execution:
        execution = self.store.executions.get(arn or "")
        if execution is None:
            raise not_found(f"Pipeline execution '{arn}' does not exist.")
        return execution

    @staticmethod
    def token(operation: str, body: dict[str, Any]) -> tuple[str, str] | None:
        token = body.get("ClientRequestToken")
        return (operation, str(token)) if token else None


Handler = Callable[[ApiContext, dict[str, Any], str, str], "dict[str, Any] | None"]

#: Handlers by SageMaker operation name.
OPERATIONS: Registry[str, Handler] = Registry(
    "SageMaker operation handler", "airflow_provider_smpipe.local.api", skip=("base",)
)
operation = OPERATIONS.register


def moto_sagemaker(account: str, region: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp(), 3)
    return float(value)


def paginate(items: list[Any], body: dict[str, Any], default_max: int = 100) -> tuple[list[Any], str | None]:
    """Offset pagination: NextToken is the index of the next item."""
    token = body.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError as err:
        raise validation_error(f"Invalid pagination token {token!r}") from err
    size = int(body.get("MaxResults") or default_max)
    page = items[start : start + size]
    return page, (str(start + size) if start + size < len(items) else None)
