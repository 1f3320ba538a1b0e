"""The SageMaker operations the local backend answers itself; moto serves the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.api.base import OPERATIONS, ApiContext

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.executor import Executor
    from airflow_provider_smpipe.local.state import Store


class SageMakerApi:
    """Dispatches a SageMaker operation to its registered handler (``None``: let moto answer)."""

    def __init__(self, store: Store, executor: Executor) -> None:
        self.context = ApiContext(store=store, executor=executor)

    def handles(self, operation: str) -> bool:
        return operation in OPERATIONS

    def call(self, operation: str, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        return OPERATIONS[operation](self.context, body, account, region)
