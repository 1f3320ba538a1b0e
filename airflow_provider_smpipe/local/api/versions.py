"""Pipeline versions: every CreatePipeline or UpdatePipeline makes one (ListPipelineVersions,
UpdatePipelineVersion); executions run, and name, the version they started from.

moto keeps only a pipeline's current definition, so the versions are recorded here: when the backend forwards
CreatePipeline/UpdatePipeline to moto, and lazily for a pipeline changed behind the backend's back (another
backend in the same process shares moto's state).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.api.base import ApiContext, moto_sagemaker, operation, paginate
from airflow_provider_smpipe.local.errors import validation_error
from airflow_provider_smpipe.local.state import now

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.state import Store

_LOCK = threading.Lock()


@dataclass
class PipelineVersion:
    version_id: int
    definition: str
    creation_time: float
    display_name: str | None = None
    description: str | None = None
    last_execution_arn: str | None = None

    def summary(self, pipeline_arn: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "PipelineArn": pipeline_arn,
            "PipelineVersionId": self.version_id,
            "CreationTime": self.creation_time,
        }
        if self.display_name:
            out["PipelineVersionDisplayName"] = self.display_name
        if self.description:
            out["PipelineVersionDescription"] = self.description
        if self.last_execution_arn:
            out["LastExecutionPipelineExecutionArn"] = self.last_execution_arn
        return out


def _table(store: Store) -> dict[str, list[PipelineVersion]]:
    table: dict[str, list[PipelineVersion]] = store.pipeline_versions
    return table


def versions_of(store: Store, pipeline: Any) -> list[PipelineVersion]:
    """The versions of moto's ``pipeline``, the last one its current definition."""
    with _LOCK:
        versions = _table(store).setdefault(pipeline.arn, [])
        if not versions or versions[-1].definition != pipeline.pipeline_definition:
            versions.append(PipelineVersion(len(versions) + 1, pipeline.pipeline_definition, now()))
        return versions


def record_change(
    store: Store, operation_name: str, pipeline_name: str, account: str, region: str
) -> int | None:
    """After moto created, updated or deleted ``pipeline_name``: the version it now runs (None once deleted)."""
    pipelines = moto_sagemaker(account, region).pipelines
    pipeline = pipelines.get(pipeline_name.split(":pipeline/")[-1])
    if operation_name == "DeletePipeline" or pipeline is None:
        with _LOCK:
            for arn in [a for a in _table(store) if a.endswith(f":pipeline/{pipeline_name}")]:
                del _table(store)[arn]
        return None
    with _LOCK:
        table = _table(store)
        if operation_name == "CreatePipeline":
            table[pipeline.arn] = []  # a pipeline created again starts over at version 1
        versions = table.setdefault(pipeline.arn, [])
        # Every update makes a version on SageMaker, even one that leaves the definition as it was.
        versions.append(PipelineVersion(len(versions) + 1, pipeline.pipeline_definition, now()))
        return versions[-1].version_id


def version_for_execution(store: Store, pipeline: Any, version_id: Any) -> PipelineVersion:
    """The version an execution runs: ``PipelineVersionId`` when given, else the latest."""
    versions = versions_of(store, pipeline)
    if version_id is None:
        return versions[-1]
    for version in versions:
        if version.version_id == int(version_id):
            return version
    raise validation_error(
        f"Pipeline version {version_id} does not exist for pipeline {pipeline.pipeline_name}."
    )


@operation("ListPipelineVersions")
def list_pipeline_versions(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    pipeline = api.pipeline(str(body.get("PipelineName", "")), account, region)
    items = list(versions_of(api.store, pipeline))
    after, before = body.get("CreatedAfter"), body.get("CreatedBefore")
    items = [
        v
        for v in items
        if (after is None or v.creation_time > float(after))
        and (before is None or v.creation_time < float(before))
    ]
    items.sort(key=lambda v: v.version_id, reverse=body.get("SortOrder", "Descending") != "Ascending")
    page, token = paginate(items, body, 10)
    out: dict[str, Any] = {"PipelineVersionSummaries": [v.summary(pipeline.arn) for v in page]}
    if token:
        out["NextToken"] = token
    return out


@operation("UpdatePipelineVersion")
def update_pipeline_version(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    pipeline = api.pipeline(str(body.get("PipelineArn", "")), account, region)
    version = version_for_execution(api.store, pipeline, body.get("PipelineVersionId"))
    if body.get("PipelineVersionDisplayName") is not None:
        version.display_name = str(body["PipelineVersionDisplayName"])
    if body.get("PipelineVersionDescription") is not None:
        version.description = str(body["PipelineVersionDescription"])
    return {"PipelineArn": pipeline.arn, "PipelineVersionId": version.version_id}
