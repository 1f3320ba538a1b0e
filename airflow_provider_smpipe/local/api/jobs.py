"""Describe*, List* and Stop* for every job kind the backend runs (processing, training, transform...).

The operations come from the job kinds' ``api_noun`` (``ProcessingJob`` -> DescribeProcessingJob with
``ProcessingJobName``, ListProcessingJobs with ``ProcessingJobSummaries``, StopProcessingJob): a new job kind gets
them by declaring its noun. Jobs the backend does not know (created directly with moto) are left to moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.api.base import OPERATIONS, ApiContext, Handler, epoch, paginate
from airflow_provider_smpipe.local.errors import ApiError, validation_error
from airflow_provider_smpipe.local.jobs import JOB_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.local.state import JobRecord


def _describe(kind: str, noun: str) -> Handler:
    def handler(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        job = api.store.get_job(account, region, kind, str(body.get(f"{noun}Name")))
        return job.describe() if job else None

    return handler


def _list(kind: str, noun: str) -> Handler:
    def handler(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        jobs = api.store.list_jobs(account, region, kind)
        contains = body.get("NameContains")
        status = body.get("StatusEquals")
        bounds = {k: epoch(body.get(k)) for k in ("CreationTimeAfter", "CreationTimeBefore")}
        jobs = [
            j
            for j in jobs
            if (not contains or contains in j.name)
            and (not status or j.status == status)
            and (bounds["CreationTimeAfter"] is None or j.creation_time > bounds["CreationTimeAfter"])
            and (bounds["CreationTimeBefore"] is None or j.creation_time < bounds["CreationTimeBefore"])
        ]
        keys: dict[str, Callable[[JobRecord], Any]] = {
            "Name": lambda j: j.name,
            "Status": lambda j: j.status,
            "CreationTime": lambda j: j.creation_time,
        }
        jobs.sort(
            key=keys.get(body.get("SortBy", "CreationTime"), keys["CreationTime"]),
            reverse=body.get("SortOrder", "Descending") != "Ascending",
        )
        items, token = paginate(jobs, body, 10)
        out: dict[str, Any] = {f"{noun}Summaries": [j.summary() for j in items]}
        if token:
            out["NextToken"] = token
        return out

    return handler


def _stop(kind: str, noun: str) -> Handler:
    def handler(api: ApiContext, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        name = body.get(f"{noun}Name")
        job = api.store.get_job(account, region, kind, str(name))
        if job is None:
            return None
        if job.status != "InProgress":
            raise validation_error(f"The job {name} is not in progress (status {job.status})")
        execution = api.store.executions.get(job.pipeline_execution_arn)
        if execution is None:
            raise ApiError("ValidationException", f"job {name} has no pipeline execution")
        # Stopping a pipeline's job stops its step; the execution then fails, as on AWS.
        job.stop_requested = True
        api.executor.stop_job(execution, job)
        return {}

    return handler


for _kind in JOB_KINDS:
    _noun = JOB_KINDS[_kind].api_noun
    if _noun:
        OPERATIONS.add(f"Describe{_noun}", _describe(_kind, _noun))
        OPERATIONS.add(f"List{_noun}s", _list(_kind, _noun))
        OPERATIONS.add(f"Stop{_noun}", _stop(_kind, _noun))
