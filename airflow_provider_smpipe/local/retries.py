"""Retry policies of a step (``RetryPolicies`` in the definition), as SageMaker applies them.

A failed attempt is retried when its failure type (``StepRun.failure_type``) is named by one of the step's
policies and that policy has attempts (``MaxAttempts``) or time (``ExpireAfterMin``, counted from the step's
first attempt) left. The n-th retry under a policy waits ``IntervalSeconds * BackoffRate ** (n - 1)`` seconds.
Failure types: ``SageMaker.JOB_INTERNAL_ERROR``, ``SageMaker.CAPACITY_ERROR``, ``SageMaker.RESOURCE_LIMIT`` (the
job failed for that reason) and ``Step.SERVICE_FAULT``, ``Step.THROTTLING`` (the step could not create its job).
A job the script failed (``AlgorithmError``) or a client error is never retried, as on SageMaker. Locally those
types only come from the fault controls (``FaultConfig.job_failures``), since local jobs do not run out of
capacity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.local.state import StepRun

#: FailureReason of an injected failure, by type (what SageMaker says for it).
FAILURE_REASONS = {
    "SageMaker.JOB_INTERNAL_ERROR": "InternalServerError: We encountered an internal error. Please try again.",
    "SageMaker.CAPACITY_ERROR": (
        "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML "
        "instance type."
    ),
    "SageMaker.RESOURCE_LIMIT": "ResourceLimitExceeded: The account-level service limit for the instance type "
    "was exceeded.",
    "Step.SERVICE_FAULT": "InternalServerError: the step failed to create its job (service fault)",
    "Step.THROTTLING": "ThrottlingException: the step failed to create its job (Rate exceeded)",
}


@dataclass
class RetryState:
    """Attempts made under each policy of one step, and when the step first started."""

    policies: list[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)
    retries: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, raw_step: dict[str, Any]) -> RetryState:
        policies = raw_step.get("RetryPolicies") or []
        return cls([p for p in policies if isinstance(p, dict)])

    def next_delay(self, failure_type: str | None) -> float | None:
        """Seconds to wait before retrying an attempt that failed with ``failure_type``; None: no retry."""
        if failure_type is None:
            return None
        for index, policy in enumerate(self.policies):
            if failure_type not in (policy.get("ExceptionType") or []):
                continue
            done = self.retries.get(index, 0)
            interval = float(policy.get("IntervalSeconds", 1))
            delay = interval * float(policy.get("BackoffRate", 2.0)) ** done
            if "MaxAttempts" in policy and done >= int(policy["MaxAttempts"]):
                return None
            if "ExpireAfterMin" in policy:
                deadline = self.started + 60 * float(policy["ExpireAfterMin"])
                if time.monotonic() + delay > deadline:
                    return None
            self.retries[index] = done + 1
            return delay
        return None


def wait(seconds: float, stopped: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` unless the execution is stopped meanwhile; True when it was."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stopped():
            return True
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    return stopped()


def restart(run: StepRun) -> None:
    """Make ``run`` the step's next attempt (ListPipelineExecutionSteps shows the latest, with its count)."""
    run.attempt_count += 1
    run.status = "Executing"
    run.retry_delay = None
    run.end_time = None
    run.failure_reason = None
    run.failure_type = None
    run.metadata = {}
    run.job = None
    run.properties = None
