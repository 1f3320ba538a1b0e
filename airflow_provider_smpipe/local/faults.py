"""Fault injection: throttling, internal errors and latency on a share of calls.

Lets the provider's retry and backoff code be tested against real error responses.
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "SMPIPE_LOCAL_"
#: What a retry policy can name: step exceptions and SageMaker job failures.
JOB_FAILURE_TYPES = frozenset(
    {
        "Step.SERVICE_FAULT",
        "Step.THROTTLING",
        "SageMaker.JOB_INTERNAL_ERROR",
        "SageMaker.CAPACITY_ERROR",
        "SageMaker.RESOURCE_LIMIT",
    }
)


@dataclass
class FaultConfig:
    """What to inject. Rates are shares of matching calls in [0, 1].

    :param throttle_rate: share of calls answered with HTTP 400 ``ThrottlingException``.
    :param error_rate: share of calls answered with HTTP 500 ``InternalFailure``.
    :param latency_ms: delay added to every matching call.
    :param operations: limit faults to these operations (``StartPipelineExecution``), services
        (``sagemaker:*``) or service operations (``logs:GetLogEvents``); empty means all calls.
    :param seed: seed for the random draws, so a run is reproducible.
    :param job_failures: ``{step name: [failure type, ...]}``: the step's next attempts fail, one per entry, with
        that type (``SageMaker.CAPACITY_ERROR``, ``SageMaker.JOB_INTERNAL_ERROR``, ``SageMaker.RESOURCE_LIMIT``:
        its job fails; ``Step.SERVICE_FAULT``, ``Step.THROTTLING``: the step fails before creating its job), in
        any execution, so retry policies can be tested.
    """

    throttle_rate: float = 0.0
    error_rate: float = 0.0
    latency_ms: int = 0
    operations: frozenset[str] = field(default_factory=frozenset)
    seed: int | None = None
    job_failures: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for step, types in self.job_failures.items():
            unknown = [t for t in types if t not in JOB_FAILURE_TYPES]
            if unknown:
                raise ValueError(
                    f"job_failures[{step!r}]: unknown failure types {unknown} (known: {sorted(JOB_FAILURE_TYPES)})"
                )

    @property
    def enabled(self) -> bool:
        return self.throttle_rate > 0 or self.error_rate > 0 or self.latency_ms > 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FaultConfig:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value not in (None, "") else None

        seed = get("FAULT_SEED")
        return cls(
            throttle_rate=float(get("THROTTLE_RATE") or 0),
            error_rate=float(get("ERROR_RATE") or 0),
            latency_ms=int(get("LATENCY_MS") or 0),
            operations=parse_operations(get("FAULT_OPERATIONS") or ""),
            seed=int(seed) if seed is not None else None,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "throttle_rate": self.throttle_rate,
            "error_rate": self.error_rate,
            "latency_ms": self.latency_ms,
            "operations": sorted(self.operations),
            "seed": self.seed,
            "job_failures": {k: list(v) for k, v in self.job_failures.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FaultConfig:
        ops = data.get("operations") or []
        seed = data.get("seed")
        failures = data.get("job_failures") or {}
        if not isinstance(failures, dict):
            raise ValueError("job_failures must be an object {step name: [failure type, ...]}")
        return cls(
            job_failures={str(k): [str(t) for t in v] for k, v in failures.items()},
            throttle_rate=float(str(data.get("throttle_rate") or 0)),
            error_rate=float(str(data.get("error_rate") or 0)),
            latency_ms=int(str(data.get("latency_ms") or 0)),
            operations=parse_operations(ops if isinstance(ops, str) else ",".join(map(str, ops))),  # type: ignore[call-overload]
            seed=int(str(seed)) if seed is not None else None,
        )


def parse_operations(text: str) -> frozenset[str]:
    return frozenset(item.strip() for item in text.split(",") if item.strip())


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str
    latency_s: float


class FaultInjector:
    """Decides, call by call, whether to inject a fault. Thread-safe and seedable."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)
            self.injected: dict[str, int] = {"ThrottlingException": 0, "InternalFailure": 0}
            self._job_failures = {step: list(types) for step, types in config.job_failures.items()}

    def take_job_failure(self, step_name: str) -> str | None:
        """The failure type the next attempt of ``step_name`` must fail with, if one is queued (consumed)."""
        with self._lock:
            queued = self._job_failures.get(step_name)
            if not queued:
                return None
            failure = queued.pop(0)
            self.injected[failure] = self.injected.get(failure, 0) + 1
            return failure

    def matches(self, service: str, operation: str) -> bool:
        ops = self.config.operations
        if not ops:
            return True
        return bool(ops & {operation, f"{service}:*", f"{service}:{operation}"})

    def decide(self, service: str, operation: str) -> Fault | None:
        """Return the fault to apply to this call, or ``None`` to serve it normally."""
        config = self.config
        if not config.enabled or not self.matches(service, operation):
            return None
        with self._lock:
            draw = self._random.random()
            latency = config.latency_ms / 1000.0
            if draw < config.throttle_rate:
                self.injected["ThrottlingException"] += 1
                return Fault(400, "ThrottlingException", "Rate exceeded", latency)
            if draw < config.throttle_rate + config.error_rate:
                self.injected["InternalFailure"] += 1
                return Fault(500, "InternalFailure", "An internal error occurred (injected fault)", latency)
        return Fault(0, "", "", latency) if latency else None


def error_body(code: str, message: str, json_protocol: bool, query_protocol: bool) -> tuple[str, bytes]:
    """Build an AWS error body: (content type, bytes) for the request's protocol."""
    request_id = str(uuid.uuid4())
    if json_protocol:
        return "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()
    if query_protocol:
        body = (
            f"<ErrorResponse><Error><Type>{'Receiver' if code == 'InternalFailure' else 'Sender'}</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    return "text/xml", body.encode()
