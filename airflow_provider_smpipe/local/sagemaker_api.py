"""The SageMaker operations the local backend implements itself (moto serves the rest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_smpipe.local.errors import ApiError, not_found, validation_error
from airflow_provider_smpipe.local.executor import Executor, random_id
from airflow_provider_smpipe.local.state import Execution, JobKind, JobRecord, Store

Handler = Callable[[dict[str, Any], str, str], dict[str, Any] | None]


def _moto_sagemaker(account: str, region: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp(), 3)
    return float(value)


def _page(items: list[Any], body: dict[str, Any], default_max: int = 100) -> tuple[list[Any], str | None]:
    """Offset pagination: NextToken is the index of the next item."""
    token = body.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError as err:
        raise validation_error(f"Invalid pagination token {token!r}") from err
    size = int(body.get("MaxResults") or default_max)
    page = items[start : start + size]
    return page, (str(start + size) if start + size < len(items) else None)


class SageMakerApi:
    """Handlers keyed by operation name; each returns the response dict, or ``None`` to let moto answer."""

    def __init__(self, store: Store, executor: Executor) -> None:
        self.store = store
        self.executor = executor
        self.handlers: dict[str, Handler] = {
            "DescribePipeline": self.describe_pipeline,
            "StartPipelineExecution": self.start_pipeline_execution,
            "DescribePipelineExecution": self.describe_pipeline_execution,
            "ListPipelineExecutions": self.list_pipeline_executions,
            "ListPipelineExecutionSteps": self.list_pipeline_execution_steps,
            "StopPipelineExecution": self.stop_pipeline_execution,
            "RetryPipelineExecution": self.retry_pipeline_execution,
            "DescribePipelineDefinitionForExecution": self.describe_pipeline_definition_for_execution,
            "ListPipelineParametersForExecution": self.list_pipeline_parameters_for_execution,
            "DescribeProcessingJob": self.describe_processing_job,
            "DescribeTrainingJob": self.describe_training_job,
            "ListProcessingJobs": self.list_processing_jobs,
            "ListTrainingJobs": self.list_training_jobs,
            "StopProcessingJob": self.stop_processing_job,
            "StopTrainingJob": self.stop_training_job,
        }

    # --- helpers --------------------------------------------------------------------------------

    def _pipeline(self, name_or_arn: str, account: str, region: str) -> Any:
        name = name_or_arn.split(":pipeline/")[-1] if name_or_arn.startswith("arn:") else name_or_arn
        pipeline = _moto_sagemaker(account, region).pipelines.get(name)
        if pipeline is None:
            raise not_found(f"Pipeline '{name_or_arn}' does not exist.")
        return pipeline

    def _execution(self, arn: str | None) -> Execution:
        execution = self.store.executions.get(arn or "")
        if execution is None:
            raise not_found(f"Pipeline execution '{arn}' does not exist.")
        return execution

    def _token(self, operation: str, body: dict[str, Any]) -> tuple[str, str] | None:
        token = body.get("ClientRequestToken")
        return (operation, str(token)) if token else None

    # --- pipelines ------------------------------------------------------------------------------

    def describe_pipeline(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        pipeline = self._pipeline(str(body.get("PipelineName", "")), account, region)
        out: dict[str, Any] = {
            "PipelineArn": pipeline.arn,
            "PipelineName": pipeline.pipeline_name,
            "PipelineDisplayName": pipeline.pipeline_display_name,
            "PipelineDefinition": pipeline.pipeline_definition,
            "PipelineStatus": pipeline.pipeline_status,
            "CreationTime": _epoch(pipeline.creation_time),
            "LastModifiedTime": _epoch(pipeline.last_modified_time),
            "CreatedBy": pipeline.created_by,
            "LastModifiedBy": pipeline.last_modified_by,
        }
        if pipeline.pipeline_description:
            out["PipelineDescription"] = pipeline.pipeline_description
        if pipeline.role_arn:
            out["RoleArn"] = pipeline.role_arn
        if pipeline.last_execution_time:
            out["LastRunTime"] = _epoch(pipeline.last_execution_time)
        if pipeline.parallelism_configuration:
            out["ParallelismConfiguration"] = pipeline.parallelism_configuration
        return out

    # --- executions -----------------------------------------------------------------------------

    def start_pipeline_execution(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        token = self._token("StartPipelineExecution", body)
        with self.store.lock:
            if token and token in self.store.tokens:
                return {"PipelineExecutionArn": self.store.tokens[token]}
            pipeline = self._pipeline(str(body.get("PipelineName", "")), account, region)
            overrides = body.get("PipelineParameters") or []
            self.executor.prepare(pipeline.pipeline_definition, overrides)
            execution_id = random_id()
            arn = f"{pipeline.arn}/execution/{execution_id}"
            parallelism = (
                body.get("ParallelismConfiguration") or pipeline.parallelism_configuration or {}
            ).get("MaxParallelExecutionSteps")
            execution = Execution(
                arn=arn,
                execution_id=execution_id,
                account=account,
                region=region,
                pipeline_name=pipeline.pipeline_name,
                pipeline_arn=pipeline.arn,
                definition_text=pipeline.pipeline_definition,
                display_name=body.get("PipelineExecutionDisplayName")
                or f"execution-{int(time.time() * 1000)}",
                description=body.get("PipelineExecutionDescription"),
                parameters=[{"Name": p["Name"], "Value": str(p.get("Value", ""))} for p in overrides],
                parallelism=int(parallelism) if parallelism else None,
            )
            self.store.executions[arn] = execution
            if token:
                self.store.tokens[token] = arn
            pipeline.last_execution_time = datetime.now(UTC)
        self.executor.start(execution)
        return {"PipelineExecutionArn": arn}

    def describe_pipeline_execution(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        execution = self._execution(body.get("PipelineExecutionArn"))
        with execution.changed:
            return execution.describe()

    def list_pipeline_executions(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        pipeline = self._pipeline(str(body.get("PipelineName", "")), account, region)
        with self.store.lock:
            items = [e for e in self.store.executions.values() if e.pipeline_arn == pipeline.arn]
        after, before = _epoch(body.get("CreatedAfter")), _epoch(body.get("CreatedBefore"))
        items = [
            e
            for e in items
            if (after is None or e.creation_time > after) and (before is None or e.creation_time < before)
        ]
        key = (
            (lambda e: e.arn) if body.get("SortBy") == "PipelineExecutionArn" else (lambda e: e.creation_time)
        )
        items.sort(key=key, reverse=body.get("SortOrder", "Descending") != "Ascending")
        page, token = _page(items, body, 50)
        out: dict[str, Any] = {"PipelineExecutionSummaries": [e.summary() for e in page]}
        if token:
            out["NextToken"] = token
        return out

    def list_pipeline_execution_steps(
        self, body: dict[str, Any], account: str, region: str
    ) -> dict[str, Any]:
        execution = self._execution(body.get("PipelineExecutionArn"))
        with execution.changed:
            runs = [execution.steps[name] for name in execution.step_order]
            rendered = [(run.start_time, index, run.render()) for index, run in enumerate(runs)]
        rendered.sort(
            key=lambda item: (item[0], item[1]), reverse=body.get("SortOrder", "Descending") != "Ascending"
        )
        page, token = _page([item[2] for item in rendered], body, 100)
        out: dict[str, Any] = {"PipelineExecutionSteps": page}
        if token:
            out["NextToken"] = token
        return out

    def stop_pipeline_execution(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        token = self._token("StopPipelineExecution", body)
        execution = self._execution(body.get("PipelineExecutionArn"))
        with self.store.lock:
            if token and self.store.tokens.get(token) == execution.arn:
                return {"PipelineExecutionArn": execution.arn}
            if execution.status != "Executing":
                raise validation_error("Only pipelines with 'Executing' status can be stopped")
            if token:
                self.store.tokens[token] = execution.arn
        self.executor.stop(execution)
        return {"PipelineExecutionArn": execution.arn}

    def retry_pipeline_execution(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        token = self._token("RetryPipelineExecution", body)
        execution = self._execution(body.get("PipelineExecutionArn"))
        with self.store.lock:
            if token and self.store.tokens.get(token) == execution.arn:
                return {"PipelineExecutionArn": execution.arn}
            if execution.status not in ("Failed", "Stopped"):
                raise validation_error(
                    f"Pipeline execution with status '{execution.status}' cannot be retried: "
                    "only 'Failed' or 'Stopped' executions can be retried"
                )
            if token:
                self.store.tokens[token] = execution.arn
        parallelism = (body.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
        self.executor.retry(execution, int(parallelism) if parallelism else None)
        return {"PipelineExecutionArn": execution.arn}

    def describe_pipeline_definition_for_execution(
        self, body: dict[str, Any], account: str, region: str
    ) -> dict[str, Any]:
        execution = self._execution(body.get("PipelineExecutionArn"))
        return {"PipelineDefinition": execution.definition_text, "CreationTime": execution.creation_time}

    def list_pipeline_parameters_for_execution(
        self, body: dict[str, Any], account: str, region: str
    ) -> dict[str, Any]:
        execution = self._execution(body.get("PipelineExecutionArn"))
        page, token = _page(list(execution.parameters), body, 50)
        out: dict[str, Any] = {"PipelineParameters": page}
        if token:
            out["NextToken"] = token
        return out

    # --- jobs -----------------------------------------------------------------------------------

    def _job(self, kind: JobKind, name: Any, account: str, region: str) -> JobRecord | None:
        return self.store.get_job(account, region, kind, str(name))

    def describe_processing_job(
        self, body: dict[str, Any], account: str, region: str
    ) -> dict[str, Any] | None:
        job = self._job("processing", body.get("ProcessingJobName"), account, region)
        return job.describe() if job else None

    def describe_training_job(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        job = self._job("training", body.get("TrainingJobName"), account, region)
        return job.describe() if job else None

    def _list_jobs(self, kind: JobKind, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        jobs = self.store.list_jobs(account, region, kind)
        contains = body.get("NameContains")
        status = body.get("StatusEquals")
        bounds = {k: _epoch(body.get(k)) for k in ("CreationTimeAfter", "CreationTimeBefore")}
        jobs = [
            j
            for j in jobs
            if (not contains or contains in j.name)
            and (not status or j.status == status)
            and (bounds["CreationTimeAfter"] is None or j.creation_time > bounds["CreationTimeAfter"])
            and (bounds["CreationTimeBefore"] is None or j.creation_time < bounds["CreationTimeBefore"])
        ]
        sort_by = body.get("SortBy", "CreationTime")
        keys: dict[str, Callable[[JobRecord], Any]] = {
            "Name": lambda j: j.name,
            "Status": lambda j: j.status,
            "CreationTime": lambda j: j.creation_time,
        }
        jobs.sort(
            key=keys.get(sort_by, keys["CreationTime"]),
            reverse=body.get("SortOrder", "Descending") != "Ascending",
        )
        page, token = _page(jobs, body, 10)
        field = "ProcessingJobSummaries" if kind == "processing" else "TrainingJobSummaries"
        out: dict[str, Any] = {field: [j.summary() for j in page]}
        if token:
            out["NextToken"] = token
        return out

    def list_processing_jobs(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        return self._list_jobs("processing", body, account, region)

    def list_training_jobs(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        return self._list_jobs("training", body, account, region)

    def _stop_job(self, kind: JobKind, name: Any, account: str, region: str) -> dict[str, Any] | None:
        job = self._job(kind, name, account, region)
        if job is None:
            return None
        if job.status != "InProgress":
            raise validation_error(f"The job {name} is not in progress (status {job.status})")
        execution = self.store.executions.get(job.pipeline_execution_arn)
        if execution is None:
            raise ApiError("ValidationException", f"job {name} has no pipeline execution")
        # Stopping a pipeline's job stops its step; the execution then fails, as on AWS.
        job.stop_requested = True
        self.executor.stop_job(execution, job)
        return {}

    def stop_processing_job(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        return self._stop_job("processing", body.get("ProcessingJobName"), account, region)

    def stop_training_job(self, body: dict[str, Any], account: str, region: str) -> dict[str, Any] | None:
        return self._stop_job("training", body.get("TrainingJobName"), account, region)
