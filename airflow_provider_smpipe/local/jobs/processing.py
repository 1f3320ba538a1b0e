"""Processing jobs: S3 inputs downloaded under /opt/ml/processing, outputs uploaded when the job ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.jobs.base import (
    JOB_KINDS,
    Instance,
    JobKind,
    JobRun,
    JobSetupError,
    local_path,
)

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.state import JobRecord


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
            s3_input = item.get("S3Input")
            if not s3_input:
                raise JobSetupError(f"input {item.get('InputName')}: only S3Input is supported locally")
            if s3_input.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobSetupError(f"input {item.get('InputName')}: only S3DataType S3Prefix is supported")
            run.download(
                s3_input["S3Uri"], local_path(inst, s3_input["LocalPath"]), f"input {item.get('InputName')}"
            )
        for output in (req.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            s3_output = output.get("S3Output")
            if s3_output:
                local_path(inst, s3_output["LocalPath"]).mkdir(parents=True, exist_ok=True)

    def command(self, run: JobRun) -> list[str]:
        spec = run.job.request["AppSpecification"]
        command = list(spec.get("ContainerEntrypoint") or []) + list(spec.get("ContainerArguments") or [])
        if not command:
            raise JobSetupError(
                f"the job has no ContainerEntrypoint; the local backend does not pull image "
                f"{spec.get('ImageUri')!r}, so it cannot run the image's default command"
            )
        return [str(part) for part in command]

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
