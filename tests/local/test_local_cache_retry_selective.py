"""Caching, retry policies (with injected job failures) and selective executions, driven with boto3."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import requests
from smpipe_local_helpers import (
    BUCKET,
    create_pipeline,
    definition,
    processing_step,
    put_script,
    steps_of,
    wait_for,
)

from airflow_provider_smpipe.local.caching import duration_seconds

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_smpipe.local.server import LocalBackend

# Appends one line per run to s3://BUCKET/<runs key>, so a test counts the runs of a step.
COUNTER = """
import os, sys, time, uuid
import boto3
s3 = boto3.client("s3")
os.makedirs("/opt/ml/processing/output/out", exist_ok=True)
open("/opt/ml/processing/output/out/value.txt", "w").write(sys.argv[1] if len(sys.argv) > 1 else "none")
s3.put_object(Bucket=os.environ["RUNS_BUCKET"], Key=os.environ["RUNS_PREFIX"] + "/" + uuid.uuid4().hex, Body=b"1")
"""


def _counting_step(name: str, code: str, runs: str, **kwargs: Any) -> dict[str, Any]:
    extra = kwargs.pop("extra", {})
    step = processing_step(
        name, code, outputs={"out": kwargs.pop("output", f"s3://{BUCKET}/o/{uuid.uuid4().hex}")}, **kwargs
    )
    step["Arguments"]["Environment"] = {"RUNS_BUCKET": BUCKET, "RUNS_PREFIX": f"{runs}/{name}"}
    step.update(extra)
    return step


def _runs(s3: Any, runs: str, step: str) -> int:
    return len(s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{runs}/{step}/").get("Contents", []))


def _parameter_join(name: str) -> dict[str, Any]:
    return {"Get": f"Parameters.{name}"}


def test_cache_hit_skips_the_job_and_reuses_the_earlier_results(sm: Any, s3: Any) -> None:
    code = put_script(s3, "count.py", COUNTER)
    runs = f"runs/{uuid.uuid4().hex[:8]}"
    cache = {"CacheConfig": {"Enabled": True, "ExpireAfter": "P1D"}}
    # The output path holds the execution id (as the SDK's default outputs do): it must not break the chain.
    output = {
        "Std:Join": {
            "On": "/",
            "Values": [f"s3://{BUCKET}/cached", {"Get": "Execution.PipelineExecutionId"}, "out"],
        }
    }
    first = _counting_step(
        "first", code, runs, output=output, arguments=[_parameter_join("Value")], extra=cache
    )
    second = _counting_step(
        "second",
        code,
        runs,
        arguments=[{"Get": "Steps.first.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}],
        extra=cache,
    )
    uncached = _counting_step("uncached", code, runs, depends_on=["second"])
    name = create_pipeline(
        sm,
        definition(
            first, second, uncached, parameters=[{"Name": "Value", "Type": "String", "DefaultValue": "a"}]
        ),
    )
    one = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, one)["PipelineExecutionStatus"] == "Succeeded"
    two = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, two)["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_of(sm, two)
    assert steps["first"]["CacheHitResult"] == {"SourcePipelineExecutionArn": one}
    assert steps["second"]["CacheHitResult"] == {"SourcePipelineExecutionArn": one}  # the chain holds
    assert "CacheHitResult" not in steps["uncached"]
    assert steps["first"]["Metadata"] == steps_of(sm, one)["first"]["Metadata"]  # the earlier job
    assert (_runs(s3, runs, "first"), _runs(s3, runs, "second"), _runs(s3, runs, "uncached")) == (1, 1, 2)
    # A different parameter value is a different key; the downstream step then reads another output: a miss.
    three = sm.start_pipeline_execution(
        PipelineName=name, PipelineParameters=[{"Name": "Value", "Value": "b"}]
    )["PipelineExecutionArn"]
    assert wait_for(sm, three)["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_of(sm, three)
    assert "CacheHitResult" not in steps["first"] and "CacheHitResult" not in steps["second"]
    assert (_runs(s3, runs, "first"), _runs(s3, runs, "second")) == (2, 2)


def test_expired_cache_entries_and_failed_runs_are_not_reused(sm: Any, s3: Any) -> None:
    code = put_script(s3, "count.py", COUNTER)
    runs = f"runs/{uuid.uuid4().hex[:8]}"
    step = _counting_step(
        "short", code, runs, extra={"CacheConfig": {"Enabled": True, "ExpireAfter": "PT1S"}}
    )
    name = create_pipeline(sm, definition(step))
    for _ in range(2):
        arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
        assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
        time.sleep(1.2)
    assert "CacheHitResult" not in steps_of(sm, arn)["short"]
    assert _runs(s3, runs, "short") == 2
    failing = put_script(s3, "fail.py", "import sys; sys.exit(3)")
    bad = processing_step("bad", failing)
    bad["CacheConfig"] = {"Enabled": True}
    name = create_pipeline(sm, definition(bad))
    for _ in range(2):
        arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
        assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    assert "CacheHitResult" not in steps_of(sm, arn)["bad"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("P30D", 30 * 86400),
        ("PT1H", 3600),
        ("30d", 30 * 86400),
        ("T16m", 960),
        ("P1Y2M", 425 * 86400),
        ("PT5S", 5),
    ],
)
def test_expire_after_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.fixture
def job_failures(backend: LocalBackend) -> Iterator[Any]:
    url = f"{backend.endpoint_url}/_smpipe/faults"

    def configure(failures: dict[str, list[str]]) -> dict[str, Any]:
        answer = requests.post(url, data=json.dumps({"job_failures": failures}), timeout=5)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    yield configure
    requests.post(url, data="{}", timeout=5)


def test_retry_policy_retries_injected_job_failures(sm: Any, s3: Any, job_failures: Any) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    step = processing_step("flaky", code)
    step["RetryPolicies"] = [
        {
            "ExceptionType": ["SageMaker.CAPACITY_ERROR"],
            "IntervalSeconds": 1,
            "BackoffRate": 2.0,
            "MaxAttempts": 2,
        }
    ]
    name = create_pipeline(sm, definition(step))
    step_name = "flaky"
    job_failures({step_name: ["SageMaker.CAPACITY_ERROR", "SageMaker.CAPACITY_ERROR"]})
    started = time.monotonic()
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    seen = set()
    while sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing":
        step_now = steps_of(sm, arn).get("flaky")
        if step_now:
            seen.add((step_now["StepStatus"], step_now["AttemptCount"]))
        assert time.monotonic() - started < 30
        time.sleep(0.1)
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    elapsed = time.monotonic() - started
    # While a retry waits the step is still Executing: a watcher never sees it fail.
    assert {status for status, _ in seen} <= {"Starting", "Executing", "Succeeded"}
    assert {attempt for _, attempt in seen} >= {1, 2}
    flaky = steps_of(sm, arn)["flaky"]
    assert flaky["AttemptCount"] == 3 and flaky["StepStatus"] == "Succeeded"
    assert elapsed >= 3.0  # 1 s, then 2 s (BackoffRate)
    jobs = sm.list_processing_jobs(NameContains=arn.rsplit("/", 1)[-1])["ProcessingJobSummaries"]
    assert sorted(j["ProcessingJobStatus"] for j in jobs) == ["Completed", "Failed", "Failed"]
    failed = next(j for j in jobs if j["ProcessingJobStatus"] == "Failed")
    assert failed["FailureReason"].startswith("CapacityError")


def test_retries_stop_at_max_attempts_and_ignore_other_types(sm: Any, s3: Any, job_failures: Any) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    limited = processing_step("limited", code)
    limited["RetryPolicies"] = [
        {"ExceptionType": ["Step.THROTTLING"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 1}
    ]
    other = processing_step("other", code)
    other["RetryPolicies"] = [{"ExceptionType": ["SageMaker.CAPACITY_ERROR"], "MaxAttempts": 5}]
    job_failures(
        {"limited": ["Step.THROTTLING", "Step.THROTTLING"], "other": ["SageMaker.JOB_INTERNAL_ERROR"]}
    )
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(limited, other)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn, timeout=30)["PipelineExecutionStatus"] == "Failed"
    steps = steps_of(sm, arn)
    assert steps["limited"]["AttemptCount"] == 2 and steps["limited"]["FailureReason"].startswith(
        "Throttling"
    )
    assert "Metadata" not in steps["limited"] or not steps["limited"]["Metadata"]  # no job was created
    assert steps["other"]["AttemptCount"] == 1 and steps["other"]["FailureReason"].startswith(
        "InternalServerError"
    )


def test_bad_fault_control_is_refused(backend: LocalBackend) -> None:
    answer = requests.post(
        f"{backend.endpoint_url}/_smpipe/faults",
        data=json.dumps({"job_failures": {"x": ["Nope"]}}),
        timeout=5,
    )
    assert answer.status_code == 400 and "Nope" in answer.text


def test_selective_execution_runs_only_the_selected_steps(sm: Any, s3: Any) -> None:
    code = put_script(s3, "count.py", COUNTER)
    runs = f"runs/{uuid.uuid4().hex[:8]}"
    prep = _counting_step("prep", code, runs)
    reads = {"Get": "Steps.prep.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}
    train = _counting_step("train", code, runs, arguments=[reads])
    evaluate = _counting_step("evaluate", code, runs, depends_on=["train"])
    report = _counting_step("report", code, runs, depends_on=["evaluate"])
    name = create_pipeline(sm, definition(prep, train, evaluate, report))
    source = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, source)["PipelineExecutionStatus"] == "Succeeded"

    config = {
        "SourcePipelineExecutionArn": source,
        "SelectedSteps": [{"StepName": "train"}, {"StepName": "evaluate"}],
    }
    arn = sm.start_pipeline_execution(PipelineName=name, SelectiveExecutionConfig=config)[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["SelectiveExecutionConfig"] == config
    steps = steps_of(sm, arn)
    assert set(steps) == {"prep", "train", "evaluate"}  # report is downstream of the selection: not run
    assert steps["prep"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": source}
    assert steps["prep"]["Metadata"] == steps_of(sm, source)["prep"]["Metadata"]
    assert "SelectiveExecutionResult" not in steps["train"]
    assert (_runs(s3, runs, "prep"), _runs(s3, runs, "train"), _runs(s3, runs, "evaluate")) == (1, 2, 2)
    assert _runs(s3, runs, "report") == 1
    # train read the source execution's prep output.
    train_job = sm.describe_processing_job(
        ProcessingJobName=steps["train"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    )
    prep_job = sm.describe_processing_job(
        ProcessingJobName=steps["prep"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    )
    assert train_job["AppSpecification"]["ContainerArguments"] == [
        prep_job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    ]


@pytest.mark.parametrize(
    ("selected", "with_source", "message"),
    [
        (["prep", "evaluate"], True, "connected"),
        (["train"], False, "SourcePipelineExecutionArn is required"),
        (["nope"], True, "not steps of the pipeline"),
    ],
)
def test_bad_selective_executions_are_refused(
    sm: Any, s3: Any, selected: list[str], with_source: bool, message: str
) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    name = create_pipeline(
        sm,
        definition(
            processing_step("prep", code),
            processing_step("train", code, depends_on=["prep"]),
            processing_step("evaluate", code, depends_on=["train"]),
        ),
    )
    source = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    wait_for(sm, source)
    config: dict[str, Any] = {"SelectedSteps": [{"StepName": s} for s in selected]}
    if with_source:
        config["SourcePipelineExecutionArn"] = source
    with pytest.raises(sm.exceptions.ClientError) as error:
        sm.start_pipeline_execution(PipelineName=name, SelectiveExecutionConfig=config)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]
