"""Pipeline executions: start, describe, list, steps, stop, retry."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from airflow_provider_smpipe.local.api.base import ApiContext, epoch, operation, paginate
from airflow_provider_smpipe.local.api.versions import version_for_execution
from airflow_provider_smpipe.local.definition import parse_definition
from airflow_provider_smpipe.local.errors import validation_error
from airflow_provider_smpipe.local.executor import random_id
from airflow_provider_smpipe.local.selective import check_selection
from airflow_provider_smpipe.local.state import Execution, now


@operation("StartPipelineExecution")
def start_pipeline_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    token = api.token("StartPipelineExecution", body)
    with api.store.lock:
        if token and token in api.store.tokens:
            return {"PipelineExecutionArn": api.store.tokens[token]}
        pipeline = api.pipeline(str(body.get("PipelineName", "")), account, region)
        version = version_for_execution(api.store, pipeline, body.get("PipelineVersionId"))
        overrides = body.get("PipelineParameters") or []
        api.executor.prepare(version.definition, overrides)
        selective = body.get("SelectiveExecutionConfig")
        if selective:
            check_selection(selective, parse_definition(version.definition), pipeline.arn, api.store)
        execution_id = random_id()
        arn = f"{pipeline.arn}/execution/{execution_id}"
        parallelism = (body.get("ParallelismConfiguration") or pipeline.parallelism_configuration or {}).get(
            "MaxParallelExecutionSteps"
        )
        execution = Execution(
            arn=arn,
            execution_id=execution_id,
            account=account,
            region=region,
            pipeline_name=pipeline.pipeline_name,
            pipeline_arn=pipeline.arn,
            definition_text=version.definition,
            display_name=body.get("PipelineExecutionDisplayName") or f"execution-{int(time.time() * 1000)}",
            description=body.get("PipelineExecutionDescription"),
            parameters=[{"Name": p["Name"], "Value": str(p.get("Value", ""))} for p in overrides],
            parallelism=int(parallelism) if parallelism else None,
            pipeline_version_id=version.version_id,
            selective_execution_config=selective or None,
        )
        version.last_execution_arn = arn
        api.store.executions[arn] = execution
        if token:
            api.store.tokens[token] = arn
        pipeline.last_execution_time = datetime.now(UTC)
    api.executor.start(execution)
    return {"PipelineExecutionArn": arn}


@operation("DescribePipelineExecution")
def describe_pipeline_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    execution = api.execution(body.get("PipelineExecutionArn"))
    with execution.changed:
        return execution.describe()


@operation("ListPipelineExecutions")
def list_pipeline_executions(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    pipeline = api.pipeline(str(body.get("PipelineName", "")), account, region)
    with api.store.lock:
        items = [e for e in api.store.executions.values() if e.pipeline_arn == pipeline.arn]
    after, before = epoch(body.get("CreatedAfter")), epoch(body.get("CreatedBefore"))
    items = [
        e
        for e in items
        if (after is None or e.creation_time > after) and (before is None or e.creation_time < before)
    ]
    key = (lambda e: e.arn) if body.get("SortBy") == "PipelineExecutionArn" else (lambda e: e.creation_time)
    items.sort(key=key, reverse=body.get("SortOrder", "Descending") != "Ascending")
    items_page, token = paginate(items, body, 50)
    out: dict[str, Any] = {"PipelineExecutionSummaries": [e.summary() for e in items_page]}
    if token:
        out["NextToken"] = token
    return out


@operation("ListPipelineExecutionSteps")
def list_pipeline_execution_steps(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    execution = api.execution(body.get("PipelineExecutionArn"))
    with execution.changed:
        runs = [execution.steps[name] for name in execution.step_order]
        rendered = [(run.start_time, index, run.render()) for index, run in enumerate(runs)]
    rendered.sort(
        key=lambda item: (item[0], item[1]), reverse=body.get("SortOrder", "Descending") != "Ascending"
    )
    items_page, token = paginate([item[2] for item in rendered], body, 100)
    out: dict[str, Any] = {"PipelineExecutionSteps": items_page}
    if token:
        out["NextToken"] = token
    return out


@operation("StopPipelineExecution")
def stop_pipeline_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    token = api.token("StopPipelineExecution", body)
    execution = api.execution(body.get("PipelineExecutionArn"))
    with api.store.lock:
        if token and api.store.tokens.get(token) == execution.arn:
            return {"PipelineExecutionArn": execution.arn}
        if execution.status != "Executing":
            raise validation_error("Only pipelines with 'Executing' status can be stopped")
        if token:
            api.store.tokens[token] = execution.arn
    api.executor.stop(execution)
    return {"PipelineExecutionArn": execution.arn}


@operation("RetryPipelineExecution")
def retry_pipeline_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    token = api.token("RetryPipelineExecution", body)
    execution = api.execution(body.get("PipelineExecutionArn"))
    with api.store.lock:
        if token and api.store.tokens.get(token) == execution.arn:
            return {"PipelineExecutionArn": execution.arn}
        if execution.status not in ("Failed", "Stopped"):
            raise validation_error(
                f"Pipeline execution with status '{execution.status}' cannot be retried: "
                "only 'Failed' or 'Stopped' executions can be retried"
            )
        if token:
            api.store.tokens[token] = execution.arn
    parallelism = (body.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
    api.executor.retry(execution, int(parallelism) if parallelism else None)
    return {"PipelineExecutionArn": execution.arn}


@operation("DescribePipelineDefinitionForExecution")
def describe_pipeline_definition_for_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    execution = api.execution(body.get("PipelineExecutionArn"))
    return {"PipelineDefinition": execution.definition_text, "CreationTime": execution.creation_time}


@operation("ListPipelineParametersForExecution")
def list_pipeline_parameters_for_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    execution = api.execution(body.get("PipelineExecutionArn"))
    items_page, token = paginate(list(execution.parameters), body, 50)
    out: dict[str, Any] = {"PipelineParameters": items_page}
    if token:
        out["NextToken"] = token
    return out


@operation("UpdatePipelineExecution")
def update_pipeline_execution(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    execution = api.execution(body.get("PipelineExecutionArn"))
    parallelism = (body.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
    with execution.changed:
        if body.get("PipelineExecutionDisplayName"):
            execution.display_name = str(body["PipelineExecutionDisplayName"])
        if body.get("PipelineExecutionDescription") is not None:
            execution.description = str(body["PipelineExecutionDescription"]) or None
        if parallelism:
            execution.parallelism = int(parallelism)
        execution.last_modified_time = now()
        execution.changed.notify_all()
    return {"PipelineExecutionArn": execution.arn}
