"""Processing jobs: S3 inputs downloaded under /opt/ml/processing, outputs uploaded when the job ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.jobs.base import (
    IMAGE_COMMANDS_ENV,
    JOB_KINDS,
    Instance,
    JobKind,
    JobRun,
    JobSetupError,
    image_command,
    local_path,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smpipe.local.state import JobRecord

PROCESSING_ROOT = "/opt/ml/processing/"


def processing_path(inst: Instance, container_path: str, what: str) -> Path:
    """Where a processing input or output lives in the workspace; SageMaker wants it under /opt/ml/processing/."""
    if not str(container_path).startswith(PROCESSING_ROOT):
        raise JobSetupError(f"{what}: LocalPath {container_path!r} must begin with {PROCESSING_ROOT}")
    return local_path(inst, container_path)


class ProcessingJobKind(JobKind):
    kind = "processing"
    api_noun = "ProcessingJob"
    resource = "processing-job"
    log_group = "/aws/sagemaker/ProcessingJobs"

    def instance_count(self, request: dict[str, Any]) -> int:
        return int(request["ProcessingResources"]["ClusterConfig"].get("InstanceCount", 1))

    def prepare(self, run: JobRun, inst: Instance, hosts: list[str]) -> None:
        req = run.job.request
        for item in req.get("ProcessingInputs") or []:
            name = item.get("InputName")
            s3_input = item.get("S3Input")
            if not s3_input:
                raise JobSetupError(f"input {name}: only S3Input is supported locally")
            if s3_input.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobSetupError(f"input {name}: only S3DataType S3Prefix is supported")
            # Pipe mode is emulated as File mode: the objects are files under LocalPath (no named pipe).
            shard = None
            if s3_input.get("S3DataDistributionType") == "ShardedByS3Key":
                shard = (hosts.index(inst.host), len(hosts))
            run.download(
                s3_input["S3Uri"],
                processing_path(inst, s3_input["LocalPath"], f"input {name}"),
                f"input {name}",
                shard,
            )
        for output in (req.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            s3_output = output.get("S3Output")
            if s3_output:
                what = f"output {output.get('OutputName')}"
                processing_path(inst, s3_output["LocalPath"], what).mkdir(parents=True, exist_ok=True)

    def command(self, run: JobRun) -> list[str]:
        spec = run.job.request["AppSpecification"]
        arguments = [str(part) for part in spec.get("ContainerArguments") or []]
        entrypoint = [str(part) for part in spec.get("ContainerEntrypoint") or []]
        if entrypoint:
            return entrypoint + arguments
        image = str(spec.get("ImageUri") or "")
        mapped = image_command(image)
        if mapped is None:
            # SageMaker would run the image's own entrypoint; without Docker there is no image.
            raise JobSetupError(
                f"image {image!r} has no ContainerEntrypoint; the local backend does not pull images, so map "
                f"the image to a local command with {IMAGE_COMMANDS_ENV}="
                f'\'{{"{image}": "python3 /path/to/entrypoint.py"}}\' (see docs/local-backend.md)'
            )
        return mapped + arguments

    def upload_outputs(self, run: JobRun) -> None:
        req = run.job.request
        for inst in run.instances:
            for output in (req.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                s3_output = output.get("S3Output")
                if s3_output:
                    run.ctx.s3.upload_dir(local_path(inst, s3_output["LocalPath"]), s3_output["S3Uri"])

    def describe(self, job: JobRecord) -> dict[str, Any]:
        req = job.request
        out: dict[str, Any] = {
            "ProcessingJobName": job.name,
            "ProcessingJobArn": job.arn,
            "ProcessingResources": req["ProcessingResources"],
            "AppSpecification": req["AppSpecification"],
            "ProcessingJobStatus": job.status,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
        }
        for key in ("ProcessingInputs", "ProcessingOutputConfig", "StoppingCondition", "Environment"):
            if req.get(key):
                out[key] = req[key]
        for key in ("NetworkConfig", "RoleArn", "ExperimentConfig"):
            if req.get(key):
                out[key] = req[key]
        if job.start_time is not None:
            out["ProcessingStartTime"] = job.start_time
        if job.end_time is not None:
            out["ProcessingEndTime"] = job.end_time
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        if job.exit_message:
            out["ExitMessage"] = job.exit_message[:1024]
        return out

    def summary(self, job: JobRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ProcessingJobName": job.name,
            "ProcessingJobArn": job.arn,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "ProcessingJobStatus": job.status,
        }
        if job.end_time is not None:
            out["ProcessingEndTime"] = job.end_time
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        return out


JOB_KINDS.add(ProcessingJobKind.kind, ProcessingJobKind())
