"""Processing and training jobs as AWS runs them: container paths, sharded inputs, several hosts that see each
other's names, image-only training jobs and the image-to-command mapping."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from typing import TYPE_CHECKING, Any

from smpipe_local_helpers import BUCKET, ROLE, create_pipeline, definition, put_script, steps_of, wait_for

from airflow_provider_smpipe.local.jobs.base import IMAGE_COMMANDS_ENV

if TYPE_CHECKING:
    import pytest

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _prefix(s3: Any, files: dict[str, str]) -> str:
    prefix = f"data/{uuid.uuid4().hex[:8]}"
    for name, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body.encode())
    return f"s3://{BUCKET}/{prefix}"


def _listing(s3: Any, uri: str) -> dict[str, str]:
    prefix = uri.split(f"s3://{BUCKET}/", 1)[1]
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) + 1 :]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode()
        for o in objects
    }


LIST_INPUTS = """
import json, os, uuid
found = {}
for root in ("/opt/ml/processing/raw", "/opt/ml/processing/lookup/here"):
    found[root] = sorted(os.listdir(root))
os.makedirs("/opt/ml/processing/results", exist_ok=True)
with open(f"/opt/ml/processing/results/{uuid.uuid4().hex}.json", "w") as out:
    json.dump(found, out)
"""


def test_processing_container_paths_and_sharded_input(sm: Any, s3: Any) -> None:
    raw = _prefix(s3, {f"part-{i}.csv": str(i) for i in range(5)})
    lookup = _prefix(s3, {"a.txt": "a", "b.txt": "b"})
    code = put_script(s3, "list_inputs.py", LIST_INPUTS)
    results = f"s3://{BUCKET}/results/{uuid.uuid4().hex[:8]}"

    def s3_input(name: str, uri: str, path: str, distribution: str, mode: str = "File") -> dict[str, Any]:
        return {
            "InputName": name,
            "AppManaged": False,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": path,
                "S3DataType": "S3Prefix",
                "S3InputMode": mode,
                "S3DataDistributionType": distribution,
                "S3CompressionType": "None",
            },
        }

    step = {
        "Name": "shard",
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "AppSpecification": {
                "ImageUri": "python:3.11",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/list_inputs.py"],
            },
            "RoleArn": ROLE,
            "ProcessingInputs": [
                s3_input("raw", raw, "/opt/ml/processing/raw", "ShardedByS3Key", mode="Pipe"),
                s3_input("lookup", lookup, "/opt/ml/processing/lookup/here", "FullyReplicated"),
                s3_input("code", code, "/opt/ml/processing/input/code", "FullyReplicated"),
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "results",
                        "S3Output": {
                            "S3Uri": results,
                            "LocalPath": "/opt/ml/processing/results",
                            "S3UploadMode": "Continuous",
                        },
                    }
                ]
            },
        },
    }
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(step)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded", steps_of(sm, arn)
    found = [json.loads(body) for body in _listing(s3, results).values()]
    assert len(found) == 2  # one file per host, both uploaded
    shards = sorted(tuple(f["/opt/ml/processing/raw"]) for f in found)
    # Every object exactly once across the hosts, split by key: part-0,2,4 and part-1,3.
    assert shards == [("part-0.csv", "part-2.csv", "part-4.csv"), ("part-1.csv", "part-3.csv")]
    assert all(f["/opt/ml/processing/lookup/here"] == ["a.txt", "b.txt"] for f in found)  # replicated


def test_processing_local_path_outside_opt_ml_processing_fails_the_job(sm: Any, s3: Any) -> None:
    code = put_script(s3, "ok.py", "print('ok')")
    step = {
        "Name": "odd",
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "AppSpecification": {
                "ImageUri": "python:3.11",
                "ContainerEntrypoint": ["python3", "/opt/ml/code/ok.py"],
            },
            "RoleArn": ROLE,
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {"S3Uri": code, "LocalPath": "/opt/ml/code", "S3DataType": "S3Prefix"},
                }
            ],
        },
    }
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(step)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    assert "must begin with /opt/ml/processing/" in steps_of(sm, arn)["odd"]["FailureReason"]


PEERS = """
import json, os, sys
config = json.load(open("/opt/ml/input/config/resourceconfig.json"))
channels = json.load(open("/opt/ml/input/config/inputdataconfig.json"))
me = config["current_host"]
record = {
    "host": me,
    "hosts": config["hosts"],
    "sm_hosts": json.loads(os.environ["SM_HOSTS"]),
    "sm_current_host": os.environ["SM_CURRENT_HOST"],
    "shard": sorted(os.listdir("/opt/ml/input/data/train")),
    "train_channel": channels["train"],
    "argv": sys.argv[1:],
    "hyperparameters": json.load(open("/opt/ml/input/config/hyperparameters.json")),
}
print("PEERS " + json.dumps(record), flush=True)
os.makedirs("/opt/ml/model", exist_ok=True)
with open(f"/opt/ml/model/{me}.json", "w") as out:
    json.dump(record, out)
"""


def _training_step(
    name: str,
    channels: dict[str, tuple[str, dict[str, Any]]],
    *,
    instance_count: int = 1,
    entrypoint: list[str] | None,
) -> dict[str, Any]:
    algorithm: dict[str, Any] = {"TrainingImage": XGBOOST, "TrainingInputMode": "File"}
    if entrypoint:
        algorithm["ContainerEntrypoint"] = entrypoint
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": algorithm,
            "HyperParameters": {"num_round": "5"},
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": uri,
                            "S3DataDistributionType": options.pop("distribution", "FullyReplicated"),
                        }
                    },
                    **options,
                }
                for channel, (uri, options) in channels.items()
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
            "ResourceConfig": {
                "InstanceCount": instance_count,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 30,
            },
            "RoleArn": ROLE,
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }


def _log_records(logs: Any, job_name: str) -> dict[str, dict[str, Any]]:
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job_name}/"
    )["logStreams"]
    records = {}
    for stream in streams:
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )["events"]
        for event in events:
            if event["message"].startswith("PEERS "):
                record = json.loads(event["message"][6:])
                records[record["host"]] = record
    return records


def test_distributed_training_hosts_see_their_peers_and_their_shard(sm: Any, s3: Any, logs: Any) -> None:
    code = put_script(s3, "peers.py", PEERS)
    train = _prefix(s3, {f"part-{i}.csv": str(i) for i in range(4)})
    step = _training_step(
        "dist",
        {
            "train": (
                train,
                {"distribution": "ShardedByS3Key", "ContentType": "text/csv", "InputMode": "Pipe"},
            ),
            "code": (code.rsplit("/", 1)[0], {}),
        },
        instance_count=3,
        entrypoint=["python3", "/opt/ml/input/data/code/peers.py"],
    )
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(step)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded", steps_of(sm, arn)
    job_name = steps_of(sm, arn)["dist"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    records = _log_records(logs, job_name)
    assert sorted(records) == ["algo-1", "algo-2", "algo-3"]
    for host, record in records.items():
        assert record["hosts"] == record["sm_hosts"] == ["algo-1", "algo-2", "algo-3"]
        assert record["sm_current_host"] == host
        assert record["train_channel"]["ContentType"] == "text/csv"
        assert record["train_channel"]["S3DistributionType"] == "ShardedByS3Key"
    assert records["algo-1"]["shard"] == ["part-0.csv", "part-3.csv"]
    assert records["algo-2"]["shard"] == ["part-1.csv"]
    assert records["algo-3"]["shard"] == ["part-2.csv"]
    # The model comes from algo-1, as on SageMaker.
    artifact = sm.describe_training_job(TrainingJobName=job_name)["ModelArtifacts"]["S3ModelArtifacts"]
    body = s3.get_object(Bucket=BUCKET, Key=artifact.split(f"s3://{BUCKET}/", 1)[1])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["algo-1.json"]


def test_image_only_training_fails_at_once_naming_the_image_and_the_setting(
    sm: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(IMAGE_COMMANDS_ENV, raising=False)
    train = _prefix(s3, {"train.csv": "1,2"})
    step = _training_step("builtin", {"train": (train, {"ContentType": "text/csv"})}, entrypoint=None)
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(step)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn, timeout=15)["PipelineExecutionStatus"] == "Failed"
    reason = steps_of(sm, arn)["builtin"]["FailureReason"]
    assert XGBOOST in reason and IMAGE_COMMANDS_ENV in reason and "Traceback" not in reason
    job_name = steps_of(sm, arn)["builtin"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    job = sm.describe_training_job(TrainingJobName=job_name)
    assert job["TrainingJobStatus"] == "Failed" and IMAGE_COMMANDS_ENV in job["FailureReason"]


def test_image_only_training_runs_the_mapped_command(
    sm: Any, s3: Any, logs: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    script = tmp_path / "builtin_train.py"
    script.write_text(PEERS)
    prefix = XGBOOST.rsplit(":", 1)[0] + "*"
    monkeypatch.setenv(IMAGE_COMMANDS_ENV, json.dumps({prefix: f"python3 {script}", "other": "false"}))
    train = _prefix(s3, {"train.csv": "1,2"})
    step = _training_step("builtin", {"train": (train, {"ContentType": "text/csv"})}, entrypoint=None)
    arn = sm.start_pipeline_execution(PipelineName=create_pipeline(sm, definition(step)))[
        "PipelineExecutionArn"
    ]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded", steps_of(sm, arn)
    job_name = steps_of(sm, arn)["builtin"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    record = _log_records(logs, job_name)["algo-1"]
    assert record["argv"] == ["train"]  # SageMaker starts a training image as `<entrypoint> train`
    assert record["hyperparameters"] == {"num_round": "5"}
