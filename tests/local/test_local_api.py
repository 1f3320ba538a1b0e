"""The API around executions: pipeline versions, UpdatePipelineExecution, log stream prefixes and operations the
backend does not serve."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.config import Config
from smpipe_local_helpers import (
    ROLE,
    create_pipeline,
    definition,
    processing_step,
    put_script,
    steps_of,
    wait_for,
)


def test_operations_nobody_serves_answer_a_parsable_4xx_naming_them(backend: Any) -> None:
    calls: list[str] = []
    sm = backend.client("sagemaker", config=Config(retries={"max_attempts": 5, "mode": "standard"}))
    sm.meta.events.register("before-send.sagemaker", lambda request, **_: calls.append(request.url))
    for method, kwargs, name in [
        ("describe_lineage_group", {"LineageGroupName": "x"}, "DescribeLineageGroup"),
        ("list_hubs", {}, "ListHubs"),
    ]:
        calls.clear()
        with pytest.raises(sm.exceptions.ClientError) as error:
            getattr(sm, method)(**kwargs)
        response = error.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert response["Error"]["Code"] == "UnknownOperationException"
        assert name in response["Error"]["Message"]
        assert len(calls) == 1  # a 4xx is not retried


def test_pipeline_versions(sm: Any, s3: Any) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    first = definition(processing_step("one", code))
    name = create_pipeline(sm, first)
    arn = sm.describe_pipeline(PipelineName=name)["PipelineArn"]
    second = definition(processing_step("one", code), processing_step("two", code, depends_on=["one"]))
    updated = sm.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(second), RoleArn=ROLE)
    assert updated["PipelineVersionId"] == 2
    summaries = sm.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"]
    assert [s["PipelineVersionId"] for s in summaries] == [2, 1]
    assert all(s["PipelineArn"] == arn for s in summaries)

    latest = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    wait_for(sm, latest)
    assert sm.describe_pipeline_execution(PipelineExecutionArn=latest)["PipelineVersionId"] == 2
    assert set(steps_of(sm, latest)) == {"one", "two"}
    older = sm.start_pipeline_execution(PipelineName=name, PipelineVersionId=1)["PipelineExecutionArn"]
    wait_for(sm, older)
    assert sm.describe_pipeline_execution(PipelineExecutionArn=older)["PipelineVersionId"] == 1
    assert set(steps_of(sm, older)) == {"one"}
    assert (
        json.loads(
            sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=older)["PipelineDefinition"]
        )
        == first
    )
    by_version = {
        s["PipelineVersionId"]: s
        for s in sm.list_pipeline_versions(PipelineName=name, SortOrder="Ascending")[
            "PipelineVersionSummaries"
        ]
    }
    assert by_version[1]["LastExecutionPipelineExecutionArn"] == older
    assert by_version[2]["LastExecutionPipelineExecutionArn"] == latest

    renamed = sm.update_pipeline_version(
        PipelineArn=arn, PipelineVersionId=1, PipelineVersionDisplayName="first"
    )
    assert renamed == {
        "PipelineArn": arn,
        "PipelineVersionId": 1,
        "ResponseMetadata": renamed["ResponseMetadata"],
    }
    described = sm.describe_pipeline(PipelineName=name, PipelineVersionId=1)
    assert json.loads(described["PipelineDefinition"]) == first
    assert described["PipelineVersionDisplayName"] == "first"
    assert json.loads(sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]) == second
    with pytest.raises(sm.exceptions.ClientError) as error:
        sm.start_pipeline_execution(PipelineName=name, PipelineVersionId=9)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    # Deleting and creating again starts over.
    sm.delete_pipeline(PipelineName=name, ClientRequestToken="d" * 40)
    create_pipeline(sm, first, name=name)
    assert [
        s["PipelineVersionId"]
        for s in sm.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"]
    ] == [1]


def test_update_pipeline_execution(sm: Any, s3: Any) -> None:
    code = put_script(s3, "slow.py", "import time; time.sleep(1.5)")
    name = create_pipeline(sm, definition(processing_step("a", code), processing_step("b", code)))
    arn = sm.start_pipeline_execution(
        PipelineName=name, ParallelismConfiguration={"MaxParallelExecutionSteps": 1}
    )["PipelineExecutionArn"]
    answer = sm.update_pipeline_execution(
        PipelineExecutionArn=arn,
        PipelineExecutionDisplayName="renamed",
        PipelineExecutionDescription="described",
        ParallelismConfiguration={"MaxParallelExecutionSteps": 2},
    )
    assert answer["PipelineExecutionArn"] == arn
    described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionDisplayName"] == "renamed"
    assert described["PipelineExecutionDescription"] == "described"
    assert described["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 2}
    deadline = time.monotonic() + 10
    while len(steps_of(sm, arn)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    steps = steps_of(sm, arn)
    assert len(steps) == 2 and all(s["StepStatus"] == "Executing" for s in steps.values())  # both at once now
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"


def test_filter_log_events_honours_the_stream_prefix(sm: Any, s3: Any, logs: Any) -> None:
    code = put_script(s3, "hello.py", "import os; print('hello from', os.environ['TAG'], flush=True)")
    a, b = processing_step("a", code), processing_step("b", code)
    a["Arguments"]["Environment"] = {"TAG": "a"}
    b["Arguments"]["Environment"] = {"TAG": "b"}
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(a, b)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    job_a = steps_of(sm, arn)["a"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    group = "/aws/sagemaker/ProcessingJobs"
    deadline = time.monotonic() + 10
    while True:
        found = logs.filter_log_events(logGroupName=group, logStreamNamePrefix=f"{job_a}/")
        if found["events"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [e["message"] for e in found["events"]] == ["hello from a"]
    assert all(e["logStreamName"].startswith(f"{job_a}/") for e in found["events"])
    assert logs.filter_log_events(logGroupName=group, logStreamNamePrefix="no-such-job/")["events"] == []
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, logStreamNamePrefix="x", logStreamNames=["y"])
