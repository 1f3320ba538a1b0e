"""Pipelines: DescribePipeline, of the latest version or of ``PipelineVersionId`` (moto answers the rest)."""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.local.api.base import ApiContext, epoch, operation
from airflow_provider_smpipe.local.api.versions import version_for_execution


@operation("DescribePipeline")
def describe_pipeline(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any] | None:
    pipeline = api.pipeline(str(body.get("PipelineName", "")), account, region)
    version = version_for_execution(api.store, pipeline, body.get("PipelineVersionId"))
    out: dict[str, Any] = {
        "PipelineArn": pipeline.arn,
        "PipelineName": pipeline.pipeline_name,
        "PipelineDisplayName": pipeline.pipeline_display_name,
        "PipelineDefinition": version.definition,
        "PipelineStatus": pipeline.pipeline_status,
        "CreationTime": epoch(pipeline.creation_time),
        "LastModifiedTime": epoch(pipeline.last_modified_time),
        "CreatedBy": pipeline.created_by,
        "LastModifiedBy": pipeline.last_modified_by,
    }
    if pipeline.pipeline_description:
        out["PipelineDescription"] = pipeline.pipeline_description
    if pipeline.role_arn:
        out["RoleArn"] = pipeline.role_arn
    if pipeline.last_execution_time:
        out["LastRunTime"] = epoch(pipeline.last_execution_time)
    if version.display_name:
        out["PipelineVersionDisplayName"] = version.display_name
    if version.description:
        out["PipelineVersionDescription"] = version.description
    if pipeline.parallelism_configuration:
        out["ParallelismConfiguration"] = pipeline.parallelism_configuration
    return out
