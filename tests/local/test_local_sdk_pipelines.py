"""End to end on SDK-generated definitions: processing -> condition -> training -> evaluation."""

from __future__ import annotations

import io
import json
import re
import tarfile
import uuid
from typing import Any

import pytest
from smpipe_local_helpers import BUCKET, FIXTURES, create_pipeline, steps_of, unique, wait_for

EXECUTION_ARN = re.compile(
    r"^arn:aws:sagemaker:us-east-1:123456789012:pipeline/[^/]+/execution/[a-z0-9]{12}$"
)
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def _seed_input(s3: Any, rows: list[str]) -> str:
    prefix = f"data/{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-0.csv", Body=("\n".join(rows) + "\n").encode())
    return f"s3://{BUCKET}/{prefix}"


def _events(logs: Any, group: str, job_name: str) -> tuple[str, list[dict[str, Any]]]:
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    assert len(streams) == 1
    stream = streams[0]["logStreamName"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return stream, events


@pytest.fixture(scope="module")
def full_definition() -> str:
    return (FIXTURES / "pipeline_full.json").read_text()


def test_full_pipeline_runs_every_step(sm: Any, s3: Any, logs: Any, full_definition: str) -> None:
    name = create_pipeline(sm, full_definition, Tags=[{"Key": "team", "Value": "ml"}])
    described = sm.describe_pipeline(PipelineName=name)
    assert json.loads(described["PipelineDefinition"]) == json.loads(full_definition)
    assert sm.list_tags(ResourceArn=described["PipelineArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]

    input_uri = _seed_input(s3, ["a", "b", "c"])
    arn = sm.start_pipeline_execution(
        PipelineName=name,
        PipelineExecutionDisplayName="full-run",
        PipelineParameters=[{"Name": "InputUri", "Value": input_uri}, {"Name": "Epochs", "Value": "3"}],
    )["PipelineExecutionArn"]
    assert EXECUTION_ARN.match(arn)
    execution_id = arn.rsplit("/", 1)[-1]
    desc = wait_for(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc
    assert desc["PipelineExecutionDisplayName"] == "full-run"

    steps = steps_of(sm, arn)
    assert list(steps) == ["prep", "check", "train", "evaluate"]
    assert all(step["StepStatus"] == "Succeeded" for step in steps.values())
    assert "too-few-rows" not in steps  # the untaken branch never shows up
    assert steps["check"]["Metadata"] == {"Condition": {"Outcome": "True"}}

    prep_arn = steps["prep"]["Metadata"]["ProcessingJob"]["Arn"]
    prep_name = prep_arn.rsplit("/", 1)[-1]
    assert prep_name.startswith(f"pipelines-{execution_id}-prep-")
    assert JOB_NAME.match(prep_name)
    prep = sm.describe_processing_job(ProcessingJobName=prep_name)
    assert prep["ProcessingJobStatus"] == "Completed"
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in prep["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["train"] == f"s3://{BUCKET}/out/{execution_id}/train"
    assert prep["ProcessingInputs"][0]["S3Input"]["S3Uri"] == input_uri
    assert prep["Environment"] == {"PREP_MODE": "full"}

    train_name = steps["train"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    train = sm.describe_training_job(TrainingJobName=train_name)
    assert train["TrainingJobStatus"] == "Completed"
    assert train["HyperParameters"] == {"epochs": "3", "label": "demo"}
    artifact = train["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/smpipe-train/{train_name}/output/model.tar.gz"
    body = s3.get_object(Bucket=BUCKET, Key=artifact.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        model = json.load(tar.extractfile("model.json"))  # type: ignore[arg-type]
    assert model["rows"] == ["a", "b", "c"]
    assert model["epochs"] == 3
    assert model["host"] == "algo-1"
    assert model["hps"] == {"epochs": 3, "label": "demo"}

    evaluation = s3.get_object(Bucket=BUCKET, Key=f"out/{execution_id}/evaluation/evaluation.json")
    assert json.loads(evaluation["Body"].read()) == {"rows": 3}

    # Logs: one stream per instance, every line an event, in order, with real timestamps.
    stream, events = _events(logs, "/aws/sagemaker/ProcessingJobs", prep_name)
    assert re.fullmatch(rf"{prep_name}/algo-1-\d{{10}}", stream)
    assert [e["message"] for e in events] == [
        "prep: read 3 rows",
        "prep: row 0 = a",
        "prep: row 1 = b",
        "prep: row 2 = c",
        "prep: done",
    ]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert prep["ProcessingStartTime"].timestamp() * 1000 - 1000 <= stamps[0]
    _, train_events = _events(logs, "/aws/sagemaker/TrainingJobs", train_name)
    lines = [e["message"] for e in train_events]
    epochs = [line for line in lines if line.startswith("train:")]
    assert epochs == [
        "train: epoch 0 on 3 rows",
        "train: epoch 1 on 3 rows",
        "train: epoch 2 on 3 rows",
        "train: model written",
    ]

    jobs = sm.list_processing_jobs(NameContains=execution_id)["ProcessingJobSummaries"]
    assert {j["ProcessingJobName"] for j in jobs} == {
        prep_name,
        steps["evaluate"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1],
    }
    trainings = sm.list_training_jobs(NameContains=execution_id)["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in trainings] == [train_name]
    summaries = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [(s["PipelineExecutionArn"], s["PipelineExecutionDisplayName"]) for s in summaries] == [
        (arn, "full-run")
    ]


def test_else_branch_runs_fail_step_with_json_get_message(sm: Any, s3: Any, full_definition: str) -> None:
    name = create_pipeline(sm, full_definition)
    arn = sm.start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=[
            {"Name": "InputUri", "Value": _seed_input(s3, ["x", "y", "z"])},
            {"Name": "MinRows", "Value": "10"},
        ],
    )["PipelineExecutionArn"]
    desc = wait_for(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"] == "only 3 rows, need 10"
    steps = steps_of(sm, arn)
    assert list(steps) == ["prep", "check", "too-few-rows"]  # train and evaluate never run
    assert steps["check"]["Metadata"] == {"Condition": {"Outcome": "False"}}
    fail = steps["too-few-rows"]
    assert fail["StepStatus"] == "Failed"
    assert fail["Metadata"] == {"Fail": {"ErrorMessage": "only 3 rows, need 10"}}
    assert fail["FailureReason"] == "only 3 rows, need 10"


def test_failing_script_reports_exit_code_and_stderr(sm: Any, s3: Any, full_definition: str) -> None:
    name = create_pipeline(sm, full_definition)
    arn = sm.start_pipeline_execution(
        PipelineName=name, PipelineParameters=[{"Name": "InputUri", "Value": _seed_input(s3, ["a", "bad"])}]
    )["PipelineExecutionArn"]
    desc = wait_for(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"] == "Step failure: One or multiple steps failed."
    prep = steps_of(sm, arn)["prep"]
    assert prep["StepStatus"] == "Failed"
    assert prep["FailureReason"].startswith("AlgorithmError:")
    assert "exit code 3" in prep["FailureReason"]
    assert prep["FailureReason"].endswith("prep: found a bad row")
    job = sm.describe_processing_job(
        ProcessingJobName=prep["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    )
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == prep["FailureReason"]


def test_simple_pipeline_parameter_override(sm: Any, s3: Any, logs: Any) -> None:
    name = create_pipeline(sm, (FIXTURES / "pipeline_simple.json").read_text(), name=unique("simple"))
    arn = sm.start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=[{"Name": "Message", "Value": "hi there"}, {"Name": "Loud", "Value": "true"}],
    )["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    echo = steps_of(sm, arn)["echo"]
    job_name = echo["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    job = sm.describe_processing_job(ProcessingJobName=job_name)
    assert job["AppSpecification"]["ContainerArguments"] == ["--message", "hi there"]
    _, events = _events(logs, "/aws/sagemaker/ProcessingJobs", job_name)
    assert [e["message"] for e in events] == ["echo: hi there"]
    body = s3.get_object(Bucket=BUCKET, Key="simple-out/message.txt")["Body"].read()
    assert body == b"hi there\n"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([{"Name": "Nope", "Value": "1"}], "not defined"),
        ([{"Name": "Loud", "Value": "maybe"}], "not a valid Boolean"),
    ],
)
def test_bad_parameters_are_rejected(sm: Any, params: list[dict[str, str]], message: str) -> None:
    name = create_pipeline(sm, (FIXTURES / "pipeline_simple.json").read_text())
    with pytest.raises(sm.exceptions.ClientError) as err:
        sm.start_pipeline_execution(PipelineName=name, PipelineParameters=params)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]
