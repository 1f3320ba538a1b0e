"""Transform steps on the local backend: the model's own serving code really runs over every input record.

Models are created with boto3 ``create_model`` over a real ``model.tar.gz`` (a scikit-learn model and an
inference script) built here; the pipelines are SDK-shaped definitions (and one compiled from operators).
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
import textwrap
import time
import uuid
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
import pytest
from smpipe_local_helpers import BUCKET, ROLE, create_pipeline, definition, steps_of, unique, wait_for

from airflow_provider_smpipe.local.jobs.base import IMAGE_COMMANDS_ENV

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smpipe.local.server import LocalBackend

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LOG_GROUP = "/aws/sagemaker/TransformJobs"

INFERENCE = """
import os

import joblib
import numpy as np

print("inference: module imported")


def model_fn(model_dir):
    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    print(f"inference: model loaded from {model_dir}")
    return model


def input_fn(request_body, request_content_type):
    assert request_content_type == "text/csv", request_content_type
    assert isinstance(request_body, str)  # text/csv bodies arrive decoded, as in the framework containers
    rows = [[float(v) for v in line.split(",")] for line in request_body.splitlines() if line.strip()]
    return np.array(rows)


def predict_fn(input_data, model):
    if (input_data < 0).any():
        raise ValueError("negative feature values are not allowed")
    return model.predict(input_data)


def output_fn(prediction, accept):
    assert accept == "text/csv", accept
    return "".join(f"{value:.4f}\\n" for value in prediction)
"""


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, bytes]:
    """A fitted LinearRegression (y = x0 + 2 x1 + 3 x2 + 0.5) and its model.tar.gz with code/inference.py."""
    import joblib
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(7)
    features = rng.uniform(0, 10, size=(40, 3))
    model = LinearRegression().fit(features, features @ np.array([1.0, 2.0, 3.0]) + 0.5)
    folder = tmp_path_factory.mktemp("model")
    joblib.dump(model, folder / "model.joblib")
    return model, _archive(
        {"model.joblib": (folder / "model.joblib").read_bytes(), "code/inference.py": INFERENCE}
    )


def _archive(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _put(s3: Any, key: str, body: bytes | str) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{BUCKET}/{key}"


def _create_model(
    sm: Any,
    s3: Any,
    archive: bytes | None,
    *,
    environment: dict[str, str] | None = None,
    image: str = SKLEARN_IMAGE,
) -> str:
    name = unique("model")
    container: dict[str, Any] = {"Image": image}
    if archive is not None:
        container["ModelDataUrl"] = _put(s3, f"models/{name}/model.tar.gz", archive)
    if environment:
        container["Environment"] = environment
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    return name


def _rows(count: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [[round(float(v), 2) for v in row] for row in rng.uniform(0, 10, size=(count, 3))]


def _csv(rows: list[list[Any]]) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def transform_step(
    name: str, model_name: Any, data: str, output: Any, instance_count: int = 1, **arguments: Any
) -> dict[str, Any]:
    """A Transform step shaped like the SDK's ``TransformStep`` output."""
    args: dict[str, Any] = {
        "ModelName": model_name,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": instance_count},
    }
    for key, value in arguments.items():
        if isinstance(value, dict) and isinstance(args.get(key), dict):
            args[key].update(value)
        else:
            args[key] = value
    return {"Name": name, "Type": "Transform", "Arguments": args}


def _run(
    sm: Any, *steps: dict[str, Any], parameters: list[dict[str, Any]] | None = None, **start: Any
) -> str:
    name = create_pipeline(sm, definition(*steps, parameters=parameters))
    arn: str = sm.start_pipeline_execution(PipelineName=name, **start)["PipelineExecutionArn"]
    wait_for(sm, arn, timeout=120)
    return arn


def _job_name(step: dict[str, Any]) -> str:
    return str(step["Metadata"]["TransformJob"]["Arn"]).rsplit("/", 1)[-1]


def _read(s3: Any, uri: str) -> str:
    key = uri.split("/", 3)[3]
    return str(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


def _log_lines(logs: Any, job_name: str) -> dict[str, list[str]]:
    try:
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")[
            "logStreams"
        ]
    except logs.exceptions.ResourceNotFoundException:  # no transform job has printed yet
        return {}
    out = {}
    for stream in streams:
        events = logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        out[stream["logStreamName"]] = [e["message"] for e in events]
    return out


def test_transform_runs_the_inference_script_over_every_record(
    sm: Any, s3: Any, logs: Any, sklearn_model: tuple[Any, bytes]
) -> None:
    model, archive = sklearn_model
    model_name = _create_model(
        sm,
        s3,
        archive,
        environment={"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
    )
    prefix = f"batch/{uuid.uuid4().hex[:8]}"
    first, second = _rows(5, 1), _rows(3, 2)
    _put(s3, f"{prefix}/part-0.csv", _csv(first))
    _put(s3, f"{prefix}/more/part-1.csv", _csv(second))
    output = {
        "Std:Join": {
            "On": "/",
            "Values": [f"s3://{BUCKET}/predictions", {"Get": "Execution.PipelineExecutionId"}],
        }
    }
    step = transform_step(
        "score",
        {"Get": "Parameters.ModelName"},
        f"s3://{BUCKET}/{prefix}",
        output,
        BatchStrategy="MultiRecord",
        MaxPayloadInMB=1,
        Environment={"SCORING": "batch"},
    )
    arn = _run(
        sm,
        step,
        parameters=[{"Name": "ModelName", "Type": "String", "DefaultValue": "unset"}],
        PipelineParameters=[{"Name": "ModelName", "Value": model_name}],
    )
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded"
    execution_id = arn.rsplit("/", 1)[-1]
    score = steps_of(sm, arn)["score"]
    assert score["StepStatus"] == "Succeeded"
    job_name = _job_name(score)
    assert job_name.startswith(f"pipelines-{execution_id}-score-")

    # Exactly one prediction per input record, in order, and the model's own values.
    for rows, key in ((first, "part-0.csv.out"), (second, "more/part-1.csv.out")):
        lines = _read(s3, f"s3://{BUCKET}/predictions/{execution_id}/{key}").splitlines()
        assert lines == [f"{value:.4f}" for value in model.predict(np.array(rows))]

    job = sm.describe_transform_job(TransformJobName=job_name)
    assert job["TransformJobStatus"] == "Completed"
    assert job["ModelName"] == model_name
    assert job["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/predictions/{execution_id}"
    assert job["TransformInput"]["SplitType"] == "Line"
    assert (job["BatchStrategy"], job["MaxPayloadInMB"], job["Environment"]) == (
        "MultiRecord",
        1,
        {"SCORING": "batch"},
    )
    assert job["TransformEndTime"] >= job["TransformStartTime"]
    listed = sm.list_transform_jobs(NameContains=execution_id)["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == [job_name]

    # The harness's lines and the script's prints reached CloudWatch, one stream per instance.
    streams = _log_lines(logs, job_name)
    ((stream, lines),) = streams.items()
    assert re.fullmatch(rf"{job_name}/algo-1-\d{{10}}", stream)
    assert "inference: module imported" in lines
    assert "inference: model loaded from /opt/ml/model" in lines
    assert "smpipe-local transform: part-0.csv: 5 records in 1 requests -> part-0.csv.out" in lines
    assert "smpipe-local transform: more/part-1.csv: 3 records in 1 requests -> more/part-1.csv.out" in lines
    assert any("handlers: model_fn, input_fn, predict_fn, output_fn" in line for line in lines)


def test_join_source_with_input_and_output_filters(
    sm: Any, s3: Any, sklearn_model: tuple[Any, bytes]
) -> None:
    model, archive = sklearn_model
    model_name = _create_model(sm, s3, archive)  # no SAGEMAKER_PROGRAM: code/inference.py of the archive
    rows = _rows(4, 3)
    prefix = f"ids/{uuid.uuid4().hex[:8]}"
    _put(s3, f"{prefix}/customers.csv", _csv([[f"cust-{i}", *row] for i, row in enumerate(rows)]))
    output = f"s3://{BUCKET}/joined/{uuid.uuid4().hex[:8]}"
    step = transform_step(
        "score",
        model_name,
        f"s3://{BUCKET}/{prefix}/",
        output,
        BatchStrategy="SingleRecord",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    )
    arn = _run(sm, step)
    assert steps_of(sm, arn)["score"]["StepStatus"] == "Succeeded", steps_of(sm, arn)
    lines = _read(s3, f"{output}/customers.csv.out").splitlines()
    predictions = model.predict(np.array(rows))
    assert lines == [f"cust-{i},{value:.4f}" for i, value in enumerate(predictions)]


def test_script_error_fails_the_step_with_the_reason(
    sm: Any, s3: Any, logs: Any, sklearn_model: tuple[Any, bytes]
) -> None:
    _, archive = sklearn_model
    model_name = _create_model(sm, s3, archive)
    prefix = f"bad/{uuid.uuid4().hex[:8]}"
    _put(s3, f"{prefix}/part-0.csv", _csv([[1, 2, 3], [4, -5, 6]]))
    output = f"s3://{BUCKET}/never/{uuid.uuid4().hex[:8]}"
    arn = _run(sm, transform_step("score", model_name, f"s3://{BUCKET}/{prefix}", output))
    described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    score = steps_of(sm, arn)["score"]
    assert score["StepStatus"] == "Failed"
    reason = score["FailureReason"]
    assert "predict_fn in inference.py raised ValueError: negative feature values are not allowed" in reason
    assert "part-0.csv" in reason
    job = sm.describe_transform_job(TransformJobName=_job_name(score))
    assert job["TransformJobStatus"] == "Failed" and job["FailureReason"] == reason
    assert "ValueError: negative feature values are not allowed" in next(
        iter(_log_lines(logs, _job_name(score)).values())
    )
    # Nothing is uploaded for a failed job.
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=output.split("/", 3)[3]).get("KeyCount", 0) == 0


def test_image_only_model_fails_at_once_naming_the_image_and_the_way_out(sm: Any, s3: Any) -> None:
    model_name = _create_model(sm, s3, _archive({"xgboost-model": b"binary"}), image=XGBOOST_IMAGE)
    data = _put(s3, f"xgb/{uuid.uuid4().hex[:8]}/part-0.csv", "1,2,3\n")
    started = time.monotonic()
    arn = _run(sm, transform_step("score", model_name, data, f"s3://{BUCKET}/xgb-out"))
    assert time.monotonic() - started < 30
    score = steps_of(sm, arn)["score"]
    assert score["StepStatus"] == "Failed"
    reason = score["FailureReason"]
    assert reason.startswith("ClientError: ")
    assert XGBOOST_IMAGE in reason and IMAGE_COMMANDS_ENV in reason and "inference script" in reason
    assert "Traceback" not in reason


def test_missing_model_and_missing_model_fn_are_clear(sm: Any, s3: Any) -> None:
    data = _put(s3, f"plain/{uuid.uuid4().hex[:8]}/part-0.csv", "1,2,3\n")
    arn = _run(sm, transform_step("score", "no-such-model", data, f"s3://{BUCKET}/none"))
    assert (
        'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/no-such-model"'
        in (steps_of(sm, arn)["score"]["FailureReason"])
    )
    no_model_fn = _archive({"code/inference.py": "def predict_fn(data, model):\n    return data\n"})
    model_name = _create_model(sm, s3, no_model_fn)
    arn = _run(sm, transform_step("score", model_name, data, f"s3://{BUCKET}/none"))
    reason = steps_of(sm, arn)["score"]["FailureReason"]
    assert "inference.py defines no model_fn(model_dir)" in reason


def test_unsupported_json_path_is_refused_before_running(
    sm: Any, s3: Any, sklearn_model: tuple[Any, bytes]
) -> None:
    model_name = _create_model(sm, s3, sklearn_model[1])
    data = _put(s3, f"paths/{uuid.uuid4().hex[:8]}/part-0.csv", "1,2,3\n")
    step = transform_step(
        "score", model_name, data, f"s3://{BUCKET}/none", DataProcessing={"InputFilter": "$..x"}
    )
    arn = _run(sm, step)
    reason = steps_of(sm, arn)["score"]["FailureReason"]
    assert reason.startswith("ClientError: ") and "recursive descent '..' is not supported" in reason


SOURCE_SCRIPT = """
import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as handle:
        return json.load(handle)


def transform_fn(model, request_body, content_type, accept):
    batch = os.environ["SAGEMAKER_BATCH"], os.environ["SAGEMAKER_BATCH_STRATEGY"]
    print(f"serve.py: {content_type} -> {accept} on {os.environ['SM_HOST_LABEL']} {batch}", flush=True)
    results = []
    for line in request_body.splitlines():
        record = json.loads(line)
        results.append(json.dumps({"score": sum(w * x for w, x in zip(model["weights"], record["x"]))}))
    return "\\n".join(results), accept
"""


def test_source_dir_from_s3_json_lines_and_two_instances(sm: Any, s3: Any, logs: Any) -> None:
    key = f"code/{uuid.uuid4().hex[:8]}/sourcedir.tar.gz"
    source = _put(
        s3, key, _archive({"serve.py": SOURCE_SCRIPT, "requirements.txt": "nothing-to-install==1.0\n"})
    )
    model_name = _create_model(
        sm,
        s3,
        _archive({"weights.json": json.dumps({"weights": [1, 10]})}),
        environment={"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": source},
    )
    prefix = f"jsonl/{uuid.uuid4().hex[:8]}"
    for index in range(3):
        records = [json.dumps({"id": f"{index}-{j}", "x": [j, index]}) for j in range(2)]
        _put(s3, f"{prefix}/file-{index}.jsonl", "\n".join(records) + "\n")
    output = f"s3://{BUCKET}/jsonl-out/{uuid.uuid4().hex[:8]}"
    step = transform_step(
        "score",
        model_name,
        f"s3://{BUCKET}/{prefix}/",
        output,
        instance_count=2,
        TransformInput={"ContentType": "application/json"},
        TransformOutput={"Accept": "application/json"},
        BatchStrategy="MultiRecord",
        DataProcessing={"JoinSource": "Input", "OutputFilter": "$['id','SageMakerOutput']"},
        Environment={"SM_HOST_LABEL": "batch"},
    )
    arn = _run(sm, step)
    score = steps_of(sm, arn)["score"]
    assert score["StepStatus"] == "Succeeded", score
    for index in range(3):
        lines = _read(s3, f"{output}/file-{index}.jsonl.out").splitlines()
        assert [json.loads(line) for line in lines] == [
            {"id": f"{index}-{j}", "SageMakerOutput": {"score": j + 10 * index}} for j in range(2)
        ]
    streams = _log_lines(logs, _job_name(score))
    assert len(streams) == 2  # one per instance; the three objects are dealt out between them
    every_line = [line for lines in streams.values() for line in lines]
    assert sum("records in" in line for line in every_line) == 3
    assert any("requirements.txt is not installed locally" in line for line in every_line)
    assert "serve.py: application/json -> application/json on batch ('true', 'MULTI_RECORD')" in every_line


SERVER = """
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

assert sys.argv[1:] == ["serve"], sys.argv


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ping" else 404)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        fields = [len(line.split(",")) for line in body.splitlines()]
        answer = "".join(f"{n} fields ({self.headers['Content-Type']})\\n" for n in fields).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        print("builtin-server:", self.requestline, flush=True)


HTTPServer(("127.0.0.1", int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Handler).serve_forever()
"""


def test_image_mapped_to_a_local_server(
    sm: Any, s3: Any, logs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = tmp_path / "builtin_server.py"
    server.write_text(textwrap.dedent(SERVER))
    monkeypatch.setenv(
        IMAGE_COMMANDS_ENV, json.dumps({XGBOOST_IMAGE.split(":")[0] + "*": [sys.executable, str(server)]})
    )
    model_name = _create_model(sm, s3, _archive({"xgboost-model": b"binary"}), image=XGBOOST_IMAGE)
    data = _put(s3, f"served/{uuid.uuid4().hex[:8]}/part-0.csv", "1,2,3\n4,5\n6\n")
    output = f"s3://{BUCKET}/served-out/{uuid.uuid4().hex[:8]}"
    arn = _run(sm, transform_step("score", model_name, data, output))
    score = steps_of(sm, arn)["score"]
    assert score["StepStatus"] == "Succeeded", score
    assert _read(s3, f"{output}/part-0.csv.out").splitlines() == [
        "3 fields (text/csv)",
        "2 fields (text/csv)",
        "1 fields (text/csv)",
    ]
    lines = next(iter(_log_lines(logs, _job_name(score)).values()))
    assert any(line.startswith("builtin-server: POST /invocations") for line in lines)


def test_operator_compiled_definition_runs_locally(
    backend: LocalBackend, sm: Any, s3: Any, sklearn_model: tuple[Any, bytes]
) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_smpipe import SageMakerPipelineTaskGroup, SageMakerTransformStepOperator
    from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
    from airflow_provider_smpipe.compiler.sdk import compile_definition

    model, archive = sklearn_model
    model_name = _create_model(sm, s3, archive)
    rows = _rows(6, 4)
    prefix = f"compiled/{uuid.uuid4().hex[:8]}"
    _put(s3, f"{prefix}/part-0.csv", _csv(rows))
    with (
        DAG("transform_local", start_date=pendulum.datetime(2026, 1, 1), schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=unique("compiled"),
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"Model": "unset"},
        ) as group,
    ):
        SageMakerTransformStepOperator(
            task_id="score",
            model_name=group.parameter("Model"),
            data=f"s3://{BUCKET}/{prefix}/",
            content_type="text/csv",
            split_type="Line",
            batch_strategy="MultiRecord",
            assemble_with="Line",
            accept="text/csv",
        )
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    text = compile_definition(build_pipeline_spec(group), session, endpoint_url=backend.endpoint_url)
    name = create_pipeline(sm, text, name=group.resolved_pipeline_name())
    arn = sm.start_pipeline_execution(
        PipelineName=name, PipelineParameters=[{"Name": "Model", "Value": model_name}]
    )["PipelineExecutionArn"]
    assert wait_for(sm, arn, timeout=120)["PipelineExecutionStatus"] == "Succeeded", steps_of(sm, arn)
    execution_id = arn.rsplit("/", 1)[-1]
    # The default output location: s3://<bucket>/<pipeline>/<execution id>/<step>/output.
    lines = _read(s3, f"s3://{BUCKET}/{name}/{execution_id}/score/output/part-0.csv.out").splitlines()
    assert lines == [f"{value:.4f}" for value in model.predict(np.array(rows))]


def test_manifest_file_input_and_gzip(sm: Any, s3: Any, sklearn_model: tuple[Any, bytes]) -> None:
    import gzip

    model, archive = sklearn_model
    model_name = _create_model(sm, s3, archive)
    prefix = f"manifest/{uuid.uuid4().hex[:8]}"
    rows = {name: _rows(2, seed) for seed, name in enumerate(["a.csv.gz", "b.csv.gz", "skipped.csv.gz"])}
    for name, values in rows.items():
        _put(s3, f"{prefix}/data/{name}", gzip.compress(_csv(values).encode()))
    listing = [{"prefix": f"s3://{BUCKET}/{prefix}/data/"}, "a.csv.gz", "b.csv.gz"]
    manifest = _put(s3, f"{prefix}/input.manifest", json.dumps(listing))
    output = f"s3://{BUCKET}/manifest-out/{uuid.uuid4().hex[:8]}"
    step = transform_step(
        "score",
        model_name,
        manifest,
        output,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": manifest}},
            "CompressionType": "Gzip",
        },
    )
    arn = _run(sm, step)
    assert steps_of(sm, arn)["score"]["StepStatus"] == "Succeeded", steps_of(sm, arn)
    for name in ("a.csv.gz", "b.csv.gz"):
        lines = _read(s3, f"{output}/{name}.out").splitlines()
        assert lines == [f"{value:.4f}" for value in model.predict(np.array(rows[name]))]
    keys = s3.list_objects_v2(Bucket=BUCKET, Prefix=output.split("/", 3)[3] + "/")["Contents"]
    assert len(keys) == 2  # only what the manifest lists


SLOW_SCRIPT = """
import time


def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    print("slow: serving a request", flush=True)
    time.sleep(60)
    return body
"""


def test_stop_transform_job_stops_the_step(sm: Any, s3: Any, logs: Any) -> None:
    model_name = _create_model(sm, s3, _archive({"code/inference.py": SLOW_SCRIPT}))
    data = _put(s3, f"slow/{uuid.uuid4().hex[:8]}/part-0.csv", "1,2,3\n")
    name = create_pipeline(
        sm, definition(transform_step("score", model_name, data, f"s3://{BUCKET}/slow-out"))
    )
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    deadline = time.monotonic() + 60
    job_name = ""
    while time.monotonic() < deadline:
        step = steps_of(sm, arn).get("score")
        if step and step.get("Metadata"):
            job_name = _job_name(step)
            lines = [line for stream in _log_lines(logs, job_name).values() for line in stream]
            if "slow: serving a request" in lines:
                break
        time.sleep(0.2)
    else:
        raise AssertionError("the transform never started serving")
    started = time.monotonic()
    sm.stop_transform_job(TransformJobName=job_name)
    assert wait_for(sm, arn, timeout=30)["PipelineExecutionStatus"] == "Failed"
    assert time.monotonic() - started < 20  # killed, not waited for
    assert steps_of(sm, arn)["score"]["StepStatus"] == "Stopped"
    assert sm.describe_transform_job(TransformJobName=job_name)["TransformJobStatus"] == "Stopped"
