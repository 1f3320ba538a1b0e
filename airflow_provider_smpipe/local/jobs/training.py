"""Training jobs: channels under /opt/ml/input/data, SageMaker's config files and SM_* variables, one process
per host, ``model.tar.gz`` uploaded at the end, metrics read from the log with the job's regexes."""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.jobs import _script_mode
from airflow_provider_smpipe.local.jobs.base import (
    IMAGE_COMMANDS_ENV,
    JOB_KINDS,
    Instance,
    JobKind,
    JobRun,
    JobSetupError,
    image_command,
    local_path,
    tar_directory,
)

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.state import JobRecord


class TrainingJobKind(JobKind):
    kind = "training"
    api_noun = "TrainingJob"
    resource = "training-job"
    log_group = "/aws/sagemaker/TrainingJobs"
    running_status = "Training"

    def instance_count(self, request: dict[str, Any]) -> int:
        return int(request["ResourceConfig"].get("InstanceCount", 1))

    def prepare(self, run: JobRun, inst: Instance, hosts: list[str]) -> None:
        req = run.job.request
        config = inst.root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        for sub in ("model", "output/data", "input/data"):
            (inst.root / sub).mkdir(parents=True, exist_ok=True)
        channels: dict[str, Any] = {}
        for channel in req.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise JobSetupError(f"channel {name}: only S3DataSource is supported locally")
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobSetupError(f"channel {name}: only S3DataType S3Prefix is supported")
            # Pipe and FastFile channels are emulated as File: the objects are files in the channel directory.
            shard = None
            if source.get("S3DataDistributionType") == "ShardedByS3Key":
                shard = (hosts.index(inst.host), len(hosts))
            run.download(source["S3Uri"], inst.root / "input" / "data" / name, f"channel {name}", shard)
            channels[name] = {
                "TrainingInputMode": channel.get("InputMode")
                or req["AlgorithmSpecification"].get("TrainingInputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                channels[name]["ContentType"] = channel["ContentType"]
        checkpoint = req.get("CheckpointConfig")
        if checkpoint:
            local = local_path(inst, checkpoint.get("LocalPath") or "/opt/ml/checkpoints")
            local.mkdir(parents=True, exist_ok=True)
            try:
                run.ctx.s3.download(checkpoint["S3Uri"], local)
            except Exception as err:
                raise JobSetupError(f"cannot download checkpoints from {checkpoint['S3Uri']}: {err}") from err
        resources = req["ResourceConfig"]
        resource_config = {
            "current_host": inst.host,
            "current_instance_type": resources.get("InstanceType", "local"),
            "current_group_name": "homogeneousCluster",
            "hosts": hosts,
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": resources.get("InstanceType", "local"),
                    "hosts": hosts,
                }
            ],
            "network_interface_name": "eth0",
        }
        hyperparameters = {str(k): str(v) for k, v in (req.get("HyperParameters") or {}).items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps(channels))
        (config / "resourceconfig.json").write_text(json.dumps(resource_config))
        if _uses_script_mode(req):
            _script_mode.prepare(run, inst)

    def command(self, run: JobRun) -> list[str]:
        spec = run.job.request["AlgorithmSpecification"]
        command = list(spec.get("ContainerEntrypoint") or []) + list(spec.get("ContainerArguments") or [])
        if command:
            return [str(part) for part in command]
        image = str(spec.get("TrainingImage") or spec.get("AlgorithmName") or "")
        mapped = image_command(image)
        if mapped is None and _uses_script_mode(run.job.request):
            return _script_mode.command(run.job.request)
        if mapped is None:
            # SageMaker would run the image's own entrypoint ("train"); without Docker there is no image.
            raise JobSetupError(
                f"image {image!r} has no ContainerEntrypoint (a built-in algorithm or an image-only job); the "
                f"local backend does not pull images, so map the image to a local command with "
                f'{IMAGE_COMMANDS_ENV}=\'{{"{image}": "python3 /path/to/train.py"}}\' (see docs/local-backend.md)'
            )
        # SageMaker starts a training image as `<image entrypoint> train`.
        return [*mapped, "train"]

    def environment(self, run: JobRun, inst: Instance) -> dict[str, str]:
        req = run.job.request
        hosts = [i.host for i in run.instances]
        channels = [c["ChannelName"] for c in req.get("InputDataConfig") or []]
        hps = {str(k): str(v) for k, v in (req.get("HyperParameters") or {}).items()}
        cpus = os.cpu_count() or 1
        env = {
            "TRAINING_JOB_NAME": run.job.name,
            "TRAINING_JOB_ARN": run.job.arn,
            "SM_MODEL_DIR": "/opt/ml/model",
            "SM_INPUT_DIR": "/opt/ml/input",
            "SM_INPUT_DATA_DIR": "/opt/ml/input/data",
            "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
            "SM_OUTPUT_DIR": "/opt/ml/output",
            "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
            "SM_OUTPUT_FAILURE": "/opt/ml/output/failure",
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(hps),
            "SM_CURRENT_HOST": inst.host,
            "SM_CURRENT_INSTANCE_TYPE": req["ResourceConfig"].get("InstanceType", "local"),
            "SM_HOSTS": json.dumps(hosts),
            "SM_NUM_CPUS": str(cpus),
            "SM_NUM_GPUS": "0",
            "SM_TRAINING_ENV": json.dumps(
                {
                    "job_name": run.job.name,
                    "current_host": inst.host,
                    "hosts": hosts,
                    "channel_input_dirs": {c: f"/opt/ml/input/data/{c}" for c in channels},
                    "hyperparameters": hps,
                    "model_dir": "/opt/ml/model",
                    "output_data_dir": "/opt/ml/output/data",
                    "num_cpus": cpus,
                    "num_gpus": 0,
                }
            ),
        }
        for channel in channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = f"/opt/ml/input/data/{channel}"
        for key, value in hps.items():
            env[f"SM_HP_{key.replace('-', '_').upper()}"] = value
        return env

    def on_line(self, run: JobRun, inst: Instance, line: str) -> None:
        # SageMaker reads metrics from every instance's log; the last value of each metric is final. It
        # matches the lines as CloudWatch keeps them, tabs as "#011" (the built-in algorithms' regexes rely
        # on it), so both forms are tried.
        escaped = line.replace("\t", "#011")
        for definition in run.job.request["AlgorithmSpecification"].get("MetricDefinitions") or []:
            pattern = _metric_regex(str(definition.get("Regex", "")))
            match = pattern.search(line) or (pattern.search(escaped) if escaped != line else None)
            if match:
                try:
                    run.job.metrics[str(definition["Name"])] = float(match.group(1))
                except (IndexError, ValueError):
                    continue

    def upload_outputs(self, run: JobRun) -> None:
        req = run.job.request
        main = run.instances[0]
        checkpoint = req.get("CheckpointConfig")
        if checkpoint:
            local = local_path(main, checkpoint.get("LocalPath") or "/opt/ml/checkpoints")
            run.ctx.s3.upload_dir(local, checkpoint["S3Uri"])
        base = f"{req['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{run.job.name}/output"
        model_tar = run.workspace / "model.tar.gz"
        tar_directory(main.root / "model", model_tar)
        run.ctx.s3.upload_file(model_tar, f"{base}/model.tar.gz")
        run.job.model_artifacts = f"{base}/model.tar.gz"
        data_dir = main.root / "output" / "data"
        if any(data_dir.iterdir()):
            output_tar = run.workspace / "output.tar.gz"
            tar_directory(data_dir, output_tar)
            run.ctx.s3.upload_file(output_tar, f"{base}/output.tar.gz")

    def describe(self, job: JobRecord) -> dict[str, Any]:
        req = job.request
        out: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "TrainingJobStatus": job.status,
            "SecondaryStatus": job.secondary_status,
            "AlgorithmSpecification": req["AlgorithmSpecification"],
            "ResourceConfig": req["ResourceConfig"],
            "StoppingCondition": req.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400},
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "ModelArtifacts": {"S3ModelArtifacts": job.model_artifacts or ""},
        }
        for key in (
            "HyperParameters",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "Environment",
            "CheckpointConfig",
            "VpcConfig",
            "ExperimentConfig",
            "EnableManagedSpotTraining",
            "RetryStrategy",
        ):
            if req.get(key):
                out[key] = req[key]
        if job.parent_arn:
            out["TuningJobArn"] = job.parent_arn
        if job.start_time is not None:
            out["TrainingStartTime"] = job.start_time
            elapsed = (job.end_time or job.last_modified_time) - job.start_time
            out["TrainingTimeInSeconds"] = max(int(elapsed), 1)
            out["BillableTimeInSeconds"] = max(int(elapsed), 1)
        if job.end_time is not None:
            out["TrainingEndTime"] = job.end_time
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        if job.metrics:
            out["FinalMetricDataList"] = [
                {"MetricName": name, "Value": value, "Timestamp": job.end_time or job.last_modified_time}
                for name, value in sorted(job.metrics.items())
            ]
        out["SecondaryStatusTransitions"] = [
            {"Status": job.secondary_status, "StartTime": job.start_time or job.creation_time}
        ]
        return out

    def summary(self, job: JobRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "TrainingJobStatus": job.status,
            "SecondaryStatus": job.secondary_status,
        }
        if job.end_time is not None:
            out["TrainingEndTime"] = job.end_time
        return out


def _uses_script_mode(request: dict[str, Any]) -> bool:
    """A framework image's script mode: no entrypoint, no local command for the image, a sagemaker_program."""
    spec = request["AlgorithmSpecification"]
    if spec.get("ContainerEntrypoint") or spec.get("ContainerArguments"):
        return False
    if image_command(str(spec.get("TrainingImage") or spec.get("AlgorithmName") or "")) is not None:
        return False
    return _script_mode.script_program(request) is not None


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _metric_regex(text: str) -> re.Pattern[str]:
    pattern = _REGEX_CACHE.get(text)
    if pattern is None:
        try:
            pattern = re.compile(text)
        except re.error:
            pattern = re.compile(r"(?!x)x")  # never matches: a bad regex reads no metric, as on SageMaker
        _REGEX_CACHE[text] = pattern
    return pattern


JOB_KINDS.add(TrainingJobKind.kind, TrainingJobKind())
