"""Fault mode: real throttling/internal errors in each protocol's error shape, latency, determinism."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_provider_smpipe.local.faults import FaultConfig, FaultInjector, parse_operations

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_smpipe.local.server import LocalBackend

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture
def faults(backend: LocalBackend) -> Iterator[FaultInjector]:
    yield backend.faults
    backend.faults.configure(FaultConfig())


def _error(call: Any) -> Any:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response


@pytest.mark.parametrize(
    ("service", "operations", "call"),
    [
        ("sagemaker", "ListPipelines", lambda c: c.list_pipelines()),  # JSON protocol
        ("s3", "s3:*", lambda c: c.list_objects_v2(Bucket="smpipe-fixtures")),  # rest-xml
        ("sts", "sts:GetCallerIdentity", lambda c: c.get_caller_identity()),  # query
        ("logs", "logs:*", lambda c: c.describe_log_groups()),  # JSON
    ],
)
def test_throttling_in_every_protocol(
    backend: LocalBackend, faults: FaultInjector, service: str, operations: str, call: Any
) -> None:
    faults.configure(FaultConfig(throttle_rate=1.0, operations=parse_operations(operations)))
    client = backend.client(service, config=NO_RETRY)
    response = _error(lambda: call(client))
    assert response["Error"]["Code"] == "ThrottlingException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_internal_failure_and_operation_filter(backend: LocalBackend, faults: FaultInjector) -> None:
    faults.configure(FaultConfig(error_rate=1.0, operations=frozenset({"DescribePipelineExecution"})))
    sm = backend.client("sagemaker", config=NO_RETRY)
    response = _error(
        lambda: sm.describe_pipeline_execution(
            PipelineExecutionArn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/abcdefabcdef"
        )
    )
    assert response["Error"]["Code"] == "InternalFailure"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    sm.list_pipelines()  # not in the filter: served normally


def test_botocore_retries_through_seeded_throttling(backend: LocalBackend, faults: FaultInjector) -> None:
    faults.configure(FaultConfig(throttle_rate=0.5, seed=3, operations=frozenset({"ListPipelines"})))
    sm = backend.client("sagemaker", config=Config(retries={"max_attempts": 20, "mode": "standard"}))
    for _ in range(5):
        sm.list_pipelines()
    assert faults.injected["ThrottlingException"] > 0


def test_latency(backend: LocalBackend, faults: FaultInjector) -> None:
    faults.configure(FaultConfig(latency_ms=300, operations=frozenset({"ListPipelines"})))
    sm = backend.client("sagemaker", config=NO_RETRY)
    started = time.monotonic()
    sm.list_pipelines()
    assert time.monotonic() - started >= 0.3


def test_seed_makes_faults_deterministic() -> None:
    def run() -> list[str]:
        injector = FaultInjector(FaultConfig(throttle_rate=0.2, error_rate=0.1, seed=42))
        return [(f.code if (f := injector.decide("sagemaker", "X")) else "") for _ in range(300)]

    first = run()
    assert first == run()
    assert 40 < first.count("ThrottlingException") < 80
    assert 10 < first.count("InternalFailure") < 50


def test_env_and_control_endpoint(backend: LocalBackend, faults: FaultInjector) -> None:
    env = {
        "SMPIPE_LOCAL_THROTTLE_RATE": "0.2",
        "SMPIPE_LOCAL_ERROR_RATE": "0.1",
        "SMPIPE_LOCAL_LATENCY_MS": "50",
        "SMPIPE_LOCAL_FAULT_OPERATIONS": "StartPipelineExecution, sagemaker:*",
        "SMPIPE_LOCAL_FAULT_SEED": "7",
    }
    config = FaultConfig.from_env(env)
    assert config == FaultConfig(0.2, 0.1, 50, frozenset({"StartPipelineExecution", "sagemaker:*"}), 7)
    request = urllib.request.Request(
        f"{backend.endpoint_url}/_smpipe/faults",
        data=json.dumps({"throttle_rate": 1, "operations": ["ListPipelines"]}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["throttle_rate"] == 1.0
    sm = backend.client("sagemaker", config=NO_RETRY)
    assert _error(sm.list_pipelines)["Error"]["Code"] == "ThrottlingException"
