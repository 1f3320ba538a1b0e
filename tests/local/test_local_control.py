"""Stop, retry, idempotency, parallelism, unsupported steps and limits, driven with boto3."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import pytest
from smpipe_local_helpers import (
    BUCKET,
    create_pipeline,
    definition,
    processing_step,
    put_script,
    steps_of,
    unique,
    wait_for,
)

SLEEPER = """
import os, sys, time
print(f"pid={os.getpid()}", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 600)
print("woke up", flush=True)
"""

CHECK_INPUT = """
import os, sys
text = open("/opt/ml/processing/input/flag/flag.txt").read().strip()
print(f"flag={text}", flush=True)
if text != "ok":
    print("flag is not ok", file=sys.stderr, flush=True)
    sys.exit(1)
"""

TIMED = """
import json, os, sys, time
start = time.time()
time.sleep(0.6)
os.makedirs("/opt/ml/processing/output/t", exist_ok=True)
json.dump({"start": start, "end": time.time()}, open("/opt/ml/processing/output/t/t.json", "w"))
"""


def _wait_step(sm: Any, arn: str, step: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = steps_of(sm, arn).get(step)
        if found and found["StepStatus"] == status:
            return found
        time.sleep(0.1)
    raise AssertionError(f"step {step} never reached {status}: {steps_of(sm, arn)}")


def _pid_from_logs(logs: Any, job_name: str, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streams = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/ProcessingJobs", logStreamNamePrefix=f"{job_name}/"
        )["logStreams"]
        if streams:
            events = logs.get_log_events(
                logGroupName="/aws/sagemaker/ProcessingJobs",
                logStreamName=streams[0]["logStreamName"],
                startFromHead=True,
            )["events"]
            for event in events:
                if event["message"].startswith("pid="):
                    return int(event["message"][4:])
        time.sleep(0.2)
    raise AssertionError("the job never logged its pid (logs must be written while it runs)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_start_is_idempotent_on_client_request_token(sm: Any, s3: Any) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    name = create_pipeline(sm, definition(processing_step("ok", code)))
    token = "t" * 40
    first = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"]
    second = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"]
    assert first == second
    assert wait_for(sm, first)["PipelineExecutionStatus"] == "Succeeded"
    summaries = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in summaries] == [first]
    assert summaries[0]["PipelineExecutionDisplayName"].startswith("execution-")
    third = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken="u" * 40)[
        "PipelineExecutionArn"
    ]
    assert third != first
    wait_for(sm, third)
    ordered = sm.list_pipeline_executions(PipelineName=name, SortOrder="Ascending")[
        "PipelineExecutionSummaries"
    ]
    assert [s["PipelineExecutionArn"] for s in ordered] == [first, third]


def test_stop_kills_the_running_job(sm: Any, s3: Any, logs: Any) -> None:
    code = put_script(s3, "sleeper.py", SLEEPER)
    name = create_pipeline(
        sm, definition(processing_step("sleep", code), processing_step("after", code, depends_on=["sleep"]))
    )
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    step = _wait_step(sm, arn, "sleep", "Executing")
    job_name = step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    pid = _pid_from_logs(logs, job_name)
    assert _alive(pid)

    token = "s" * 40
    assert (
        sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)["PipelineExecutionArn"]
        == arn
    )
    # Same token again: same answer, even though the execution is no longer Executing.
    assert (
        sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)["PipelineExecutionArn"]
        == arn
    )
    desc = wait_for(sm, arn, timeout=20)
    assert desc["PipelineExecutionStatus"] == "Stopped"
    steps = steps_of(sm, arn)
    assert list(steps) == ["sleep"]
    assert steps["sleep"]["StepStatus"] == "Stopped"
    assert sm.describe_processing_job(ProcessingJobName=job_name)["ProcessingJobStatus"] == "Stopped"
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)

    with pytest.raises(sm.exceptions.ClientError) as err:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="x" * 40)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"] == "Only pipelines with 'Executing' status can be stopped"


def test_retry_reruns_failed_steps_only(sm: Any, s3: Any) -> None:
    flag_prefix = f"flags/{unique('f')}"
    s3.put_object(Bucket=BUCKET, Key=f"{flag_prefix}/flag.txt", Body=b"broken")
    first = put_script(s3, "ok.py", "print('first ran')")
    check = put_script(s3, "check.py", CHECK_INPUT)
    name = create_pipeline(
        sm,
        definition(
            processing_step("first", first),
            processing_step(
                "check", check, inputs={"flag": f"s3://{BUCKET}/{flag_prefix}"}, depends_on=["first"]
            ),
            processing_step("last", first, depends_on=["check"]),
        ),
    )
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    before = steps_of(sm, arn)
    assert before["check"]["StepStatus"] == "Failed"
    assert "flag is not ok" in before["check"]["FailureReason"]
    assert "last" not in before

    with pytest.raises(sm.exceptions.ClientError):
        sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="y" * 40)

    s3.put_object(Bucket=BUCKET, Key=f"{flag_prefix}/flag.txt", Body=b"ok")
    token = "r" * 40
    assert (
        sm.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)[
            "PipelineExecutionArn"
        ]
        == arn
    )
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    after = steps_of(sm, arn)
    assert after["first"] == before["first"]  # kept, not re-run
    assert after["check"]["AttemptCount"] == 2
    assert after["check"]["StepStatus"] == "Succeeded"
    assert after["check"]["Metadata"] != before["check"]["Metadata"]  # a new job
    assert after["last"]["StepStatus"] == "Succeeded"
    # The same token does not retry again; a new one on a Succeeded execution is refused.
    assert (
        sm.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)[
            "PipelineExecutionArn"
        ]
        == arn
    )
    assert steps_of(sm, arn)["check"]["AttemptCount"] == 2
    with pytest.raises(sm.exceptions.ClientError) as err:
        sm.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="z" * 40)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert len(sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]) == 1


def _intervals(s3: Any, prefix: str, names: list[str]) -> list[tuple[float, float]]:
    out = []
    for step in names:
        import json

        body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{step}/t.json")["Body"].read()
        data = json.loads(body)
        out.append((data["start"], data["end"]))
    return sorted(out)


@pytest.mark.parametrize("where", ["pipeline", "execution"])
def test_parallelism_configuration_is_respected(sm: Any, s3: Any, where: str) -> None:
    code = put_script(s3, "timed.py", TIMED)
    prefix = f"timed/{unique('p')}"
    names = ["a", "b", "c"]
    steps = [processing_step(n, code, outputs={"t": f"s3://{BUCKET}/{prefix}/{n}"}) for n in names]
    config = {"MaxParallelExecutionSteps": 1}
    if where == "pipeline":
        name = create_pipeline(sm, definition(*steps), ParallelismConfiguration=config)
        arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    else:
        name = create_pipeline(sm, definition(*steps))
        arn = sm.start_pipeline_execution(PipelineName=name, ParallelismConfiguration=config)[
            "PipelineExecutionArn"
        ]
    desc = wait_for(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Succeeded"
    spans = _intervals(s3, prefix, names)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"steps overlapped: {spans}"


def test_independent_steps_run_in_parallel_by_default(sm: Any, s3: Any) -> None:
    code = put_script(s3, "timed.py", TIMED)
    prefix = f"timed/{unique('p')}"
    steps = [processing_step(n, code, outputs={"t": f"s3://{BUCKET}/{prefix}/{n}"}) for n in ("a", "b")]
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(*steps)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    (_s1, e1), (s2, _) = _intervals(s3, prefix, ["a", "b"])
    assert s2 < e1


@pytest.mark.parametrize("step_type", ["EMR", "ClarifyCheck", "AutoML"])
def test_unsupported_step_type_fails_the_step(sm: Any, step_type: str) -> None:
    name = create_pipeline(sm, definition({"Name": "odd", "Type": step_type, "Arguments": {}}))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    step = steps_of(sm, arn)["odd"]
    assert step["StepStatus"] == "Failed"
    assert step["FailureReason"].startswith(f"step type {step_type} is not supported by the local backend")


def test_max_runtime_is_enforced(sm: Any, s3: Any) -> None:
    code = put_script(s3, "sleeper.py", SLEEPER)
    name = create_pipeline(sm, definition(processing_step("slow", code, max_runtime=1)))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn, timeout=20)["PipelineExecutionStatus"] == "Failed"
    step = steps_of(sm, arn)["slow"]
    assert step["FailureReason"].startswith("MaxRuntimeExceeded")
    assert "MaxRuntimeInSeconds=1" in step["FailureReason"]


def test_multi_instance_job_writes_one_stream_per_host(sm: Any, s3: Any, logs: Any) -> None:
    code = put_script(s3, "host.py", "import socket, os\nprint('hello from instance', flush=True)\n")
    name = create_pipeline(sm, definition(processing_step("multi", code, instance_count=2)))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    job_name = steps_of(sm, arn)["multi"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/ProcessingJobs", logStreamNamePrefix=f"{job_name}/"
    )["logStreams"]
    hosts = sorted(s["logStreamName"].split("/")[1].rsplit("-", 1)[0] for s in streams)
    assert hosts == ["algo-1", "algo-2"]


def test_list_steps_pagination_and_order(sm: Any, s3: Any) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    steps = [processing_step("one", code)]
    steps += [
        processing_step("two", code, depends_on=["one"]),
        processing_step("three", code, depends_on=["two"]),
    ]
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(*steps)))[
        "PipelineExecutionArn"
    ]
    wait_for(sm, arn)
    seen = []
    kwargs: dict[str, Any] = {"PipelineExecutionArn": arn, "MaxResults": 1}
    while True:
        page = sm.list_pipeline_execution_steps(**kwargs)
        assert len(page["PipelineExecutionSteps"]) <= 1
        seen += [s["StepName"] for s in page["PipelineExecutionSteps"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == ["three", "two", "one"]  # Descending by StartTime is the default
    paginator = sm.get_paginator("list_pipeline_execution_steps")
    ascending = [
        s["StepName"]
        for page in paginator.paginate(
            PipelineExecutionArn=arn, SortOrder="Ascending", PaginationConfig={"PageSize": 2}
        )
        for s in page["PipelineExecutionSteps"]
    ]
    assert ascending == ["one", "two", "three"]


def test_unknown_execution_is_not_found(sm: Any) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_pipeline_execution(
            PipelineExecutionArn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/nope/execution/abcdefabcdef"
        )
