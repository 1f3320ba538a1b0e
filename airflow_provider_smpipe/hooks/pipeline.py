"""SageMaker Pipelines hook: idempotent pipeline upsert and execution start, plus async calls for triggers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_provider_smpipe.executions import (
    EXECUTION_TERMINAL_STATUSES,
    RunKey,
    client_request_token,
    definition_sha256,
    display_name_prefix,
    execution_display_name,
    parse_generation,
    retry_token,
)
from airflow_provider_smpipe.hooks.async_clients import shared_async_client
from airflow_provider_smpipe.ratelimit import (
    acall_with_backoff,
    call_with_backoff,
    error_code,
    get_bucket,
)

T = TypeVar("T")

TAG_DAG_ID = "smpipe:dag-id"
TAG_GROUP_ID = "smpipe:group-id"
TAG_DEFINITION_SHA = "smpipe:definition-sha256"
#: Largest inline PipelineDefinition SageMaker accepts.
MAX_INLINE_DEFINITION_CHARS = 1_048_576

#: botocore's own retries (throttling, 5xx, connection errors) under our bounded backoff loop.
DEFAULT_BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 5}}

_NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})


class PipelineOwnershipError(AirflowException):
    """A pipeline of that name exists and this DAG/group did not create it: it is never overwritten."""


class PipelineDefinitionTooLargeError(AirflowException):
    """The compiled definition exceeds SageMaker's inline limit."""


class ExecutionNotFoundError(AirflowException):
    """No execution of this pipeline belongs to the run key."""


def with_default_retries(config: Config) -> Config:
    """
    Return ``config`` with :data:`DEFAULT_BOTOCORE_CONFIG` retries when it configures none.

    :param config: A botocore config (the hook's or the connection's).
    """
    if getattr(config, "retries", None):
        return config
    return config.merge(Config(**DEFAULT_BOTOCORE_CONFIG))


def _strip(response: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _is_pipeline_missing(exc: ClientError) -> bool:
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message") or "")
    return code in _NOT_FOUND_CODES or (code == "ValidationException" and "not find" in message.lower())


def _marker(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _tags_to_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    # Later entries win, the way AddTags replaces an existing key.
    return {t["Key"]: t["Value"] for t in tags}


def _job_describe_call(arn: str) -> tuple[str, str, str]:
    """Return (operation, name parameter, job name) for a SageMaker job ARN."""
    resource = arn.split(":", 5)[-1]
    kind, _, name = resource.partition("/")
    calls = {
        "processing-job": ("describe_processing_job", "ProcessingJobName"),
        "training-job": ("describe_training_job", "TrainingJobName"),
        "transform-job": ("describe_transform_job", "TransformJobName"),
        "hyper-parameter-tuning-job": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName"),
    }
    if kind not in calls or not name:
        raise ValueError(f"Not a SageMaker job ARN this provider can describe: {arn!r}")
    operation, param = calls[kind]
    return operation, param, name


def _executions_page_request(pipeline_name: str, token: str | None) -> dict[str, Any]:
    """ListPipelineExecutions arguments for one page, newest first."""
    request: dict[str, Any] = {
        "PipelineName": pipeline_name,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    if token:
        request["NextToken"] = token
    return request


def _run_executions_in_page(page: Mapping[str, Any], run_key: RunKey) -> list[tuple[int, dict[str, Any]]]:
    """``(generation, summary)`` of the page's executions that belong to ``run_key`` (by display name)."""
    found = []
    for summary in page.get("PipelineExecutionSummaries", []):
        generation = parse_generation(summary.get("PipelineExecutionDisplayName"), run_key)
        if generation is not None:
            found.append((generation, summary))
    return found


class SageMakerPipelineHook(AwsBaseHook):
    """
    Interact with SageMaker Pipelines: pipeline upsert and executions (sync, for workers) and async calls (for
    triggers, through aiobotocore).

    Throttling and transient errors are retried by botocore (standard retry mode, unless the connection or
    ``config`` says otherwise) and by a bounded jittered backoff loop around the calls that matter.

    Additional arguments (such as ``aws_conn_id``) may be specified and are passed down to the underlying
    AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)
        #: Bounded attempts of our own backoff loop (on top of botocore's).
        self.max_attempts = 8
        self.sleep: Callable[[float], Any] = time.sleep
        self.async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def _get_config(self, config: Config | None = None) -> Config:
        """Add standard-mode retries unless the hook or the connection configured retries."""
        return with_default_retries(super()._get_config(config))

    # ----------------------------------------------------------------------------------------------- sync
    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.conn, operation)
        return call_with_backoff(
            lambda: method(**kwargs), op_name=operation, max_attempts=self.max_attempts, sleep=self.sleep
        )

    def _describe_pipeline_or_none(self, pipeline_name: str) -> dict[str, Any] | None:
        try:
            return self._call("describe_pipeline", PipelineName=pipeline_name)
        except ClientError as exc:
            if _is_pipeline_missing(exc):
                return None
            raise

    def get_pipeline_tags(self, pipeline_arn: str) -> dict[str, str]:
        """
        Return all tags of a pipeline as a dict.

        :param pipeline_arn: The pipeline ARN.
        """
        tags: list[dict[str, str]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ResourceArn": pipeline_arn}
            if token:
                kwargs["NextToken"] = token
            page = self._call("list_tags", **kwargs)
            tags.extend(page.get("Tags", []))
            token = page.get("NextToken")
            if not token:
                return _tags_to_dict(tags)

    def upsert_pipeline(
        self,
        *,
        pipeline_name: str,
        definition: str,
        role_arn: str,
        dag_id: str,
        group_id: str,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        parallelism: int | None = None,
    ) -> dict[str, Any]:
        """
        Create the pipeline, or update it only when its definition (or role) changed.

        Ownership and change detection go through pipeline tags: ``smpipe:dag-id``, ``smpipe:group-id`` and
        ``smpipe:definition-sha256``. A pipeline of the same name created by another DAG/group, or without
        smpipe tags, is never overwritten.

        :param pipeline_name: The pipeline name.
        :param definition: The pipeline definition JSON text (at most 1,048,576 characters).
        :param role_arn: The IAM role the pipeline runs as.
        :param dag_id: The DAG id that owns the pipeline.
        :param group_id: The task group id that owns the pipeline.
        :param tags: Extra tags, set on create and refreshed on update.
        :param description: The pipeline description.
        :param parallelism: MaxParallelExecutionSteps.
        :return: ``{"PipelineArn": ..., "action": "created" | "updated" | "unchanged"}``
        :raises PipelineOwnershipError: when the pipeline belongs to someone else.
        :raises PipelineDefinitionTooLargeError: when the definition is too large to pass inline.
        """
        if len(definition) > MAX_INLINE_DEFINITION_CHARS:
            raise PipelineDefinitionTooLargeError(
                f"The definition of pipeline {pipeline_name!r} is {len(definition):,} characters; SageMaker "
                f"accepts at most {MAX_INLINE_DEFINITION_CHARS:,} inline. Split the group into smaller "
                "pipelines or move large literals (e.g. inline code) to S3."
            )
        sha = definition_sha256(definition)
        owner = {TAG_DAG_ID: dag_id, TAG_GROUP_ID: group_id}
        optional: dict[str, Any] = {}
        if description is not None:
            optional["PipelineDescription"] = description
        if parallelism is not None:
            optional["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": parallelism}

        existing = self._describe_pipeline_or_none(pipeline_name)
        if existing is None:
            all_tags = {**(tags or {}), **owner, TAG_DEFINITION_SHA: sha}
            try:
                created = self._call(
                    "create_pipeline",
                    PipelineName=pipeline_name,
                    PipelineDefinition=definition,
                    RoleArn=role_arn,
                    Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()],
                    ClientRequestToken=definition_sha256(f"smpipe-create\0{pipeline_name}\0{sha}"),
                    **optional,
                )
            except ClientError as exc:
                # Another launch created it between our describe and create: treat it as existing.
                if error_code(exc) not in {"ResourceInUse", "ConflictException"}:
                    raise
                existing = self._describe_pipeline_or_none(pipeline_name)
                if existing is None:
                    raise
            else:
                self.log.info("Created pipeline %s (definition sha256 %s)", pipeline_name, sha)
                return {"PipelineArn": created["PipelineArn"], "action": "created"}

        arn = existing["PipelineArn"]
        current = self.get_pipeline_tags(arn)
        if current.get(TAG_DAG_ID) != dag_id or current.get(TAG_GROUP_ID) != group_id:
            if TAG_DAG_ID not in current and TAG_GROUP_ID not in current:
                owner_text = "it has no smpipe:dag-id/smpipe:group-id tags (it was not created by smpipe)"
            else:
                owner_text = (
                    f"its tags say DAG {current.get(TAG_DAG_ID)!r}, group {current.get(TAG_GROUP_ID)!r} "
                    "created it"
                )
            raise PipelineOwnershipError(
                f"Refusing to overwrite SageMaker pipeline {pipeline_name!r} for DAG {dag_id!r}, group "
                f"{group_id!r}: {owner_text}. Choose another pipeline_name or delete that pipeline."
            )
        if current.get(TAG_DEFINITION_SHA) == sha and existing.get("RoleArn") == role_arn:
            self.log.info("Pipeline %s is unchanged (definition sha256 %s)", pipeline_name, sha)
            return {"PipelineArn": arn, "action": "unchanged"}

        self._call(
            "update_pipeline",
            PipelineName=pipeline_name,
            PipelineDefinition=definition,
            RoleArn=role_arn,
            **optional,
        )
        new_tags = {**(tags or {}), TAG_DEFINITION_SHA: sha}
        self._call("add_tags", ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in new_tags.items()])
        self.log.info(
            "Updated pipeline %s (definition sha256 %s -> %s)",
            pipeline_name,
            current.get(TAG_DEFINITION_SHA),
            sha,
        )
        return {"PipelineArn": arn, "action": "updated"}

    def list_run_executions(self, pipeline_name: str, run_key: RunKey) -> list[tuple[int, dict[str, Any]]]:
        """
        Return ``(generation, summary)`` of every execution of this run key, latest generation first.

        :param pipeline_name: The pipeline name.
        :param run_key: The run key.
        """
        found: list[tuple[int, dict[str, Any]]] = []
        token: str | None = None
        while True:
            page = self._call("list_pipeline_executions", **_executions_page_request(pipeline_name, token))
            found.extend(_run_executions_in_page(page, run_key))
            token = page.get("NextToken")
            if not token:
                break
        found.sort(key=lambda item: item[0], reverse=True)
        return found

    def _wait_until_ended(self, arn: str, timeout: float, interval: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described = self.describe_execution(arn)
            if described.get("PipelineExecutionStatus") in EXECUTION_TERMINAL_STATUSES:
                return described
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"Execution {arn} is still {described.get('PipelineExecutionStatus')} after "
                    f"{timeout:.0f} s; not starting a new one while it is stopping."
                )
            self.sleep(interval)

    def start_or_attach_execution(
        self,
        *,
        pipeline_name: str,
        run_key: RunKey,
        parameters: dict[str, str],
        description: str | None = None,
        parallelism: int | None = None,
        stopping_timeout: float = 1800.0,
        stopping_poll_interval: float = 10.0,
    ) -> dict[str, Any]:
        """
        Attach to this run's execution, or start the next generation of it.

        - no execution of the run key: start generation 0;
        - the latest generation is Executing or Succeeded: attach to it (a retried launch never starts a
          second execution);
        - it is Stopping: wait until it ended, then start the next generation;
        - it ended Failed or Stopped (the user cleared the whole group): start generation n+1.

        Every start sends ``client_request_token(run_key, generation)``, so a launch retried after crashing
        in the middle of the call gets the execution it already started.

        :param pipeline_name: The pipeline name.
        :param run_key: The run key (DAG id, run id, group id).
        :param parameters: Pipeline parameter values, as strings.
        :param description: PipelineExecutionDescription.
        :param parallelism: MaxParallelExecutionSteps of this execution.
        :param stopping_timeout: How long to wait for a Stopping execution to end.
        :param stopping_poll_interval: Poll interval while waiting for it.
        :return: ``{"PipelineExecutionArn", "PipelineExecutionDisplayName", "PipelineExecutionStatus",
            "generation", "attached"}``
        """
        executions = self.list_run_executions(pipeline_name, run_key)
        generation = 0
        if executions:
            latest_generation, latest = executions[0]
            arn = latest["PipelineExecutionArn"]
            status = latest.get("PipelineExecutionStatus")
            if status == "Stopping":
                self.log.info("Execution %s is stopping; waiting for it to end", arn)
                status = self._wait_until_ended(arn, stopping_timeout, stopping_poll_interval).get(
                    "PipelineExecutionStatus"
                )
            if status in ("Executing", "Succeeded"):
                self.log.info("Attaching to execution %s (generation %s, %s)", arn, latest_generation, status)
                return {
                    "PipelineExecutionArn": arn,
                    "PipelineExecutionDisplayName": latest.get("PipelineExecutionDisplayName"),
                    "PipelineExecutionStatus": status,
                    "generation": latest_generation,
                    "attached": True,
                }
            generation = latest_generation + 1
            self.log.info(
                "The latest execution %s of this run ended %s: starting generation %s",
                arn,
                status,
                generation,
            )

        display_name = execution_display_name(run_key, generation)
        kwargs: dict[str, Any] = {
            "PipelineName": pipeline_name,
            "PipelineExecutionDisplayName": display_name,
            "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in parameters.items()],
            "ClientRequestToken": client_request_token(run_key, generation),
        }
        if description is not None:
            kwargs["PipelineExecutionDescription"] = description
        if parallelism is not None:
            kwargs["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": parallelism}
        started = self._call("start_pipeline_execution", **kwargs)
        arn = started["PipelineExecutionArn"]
        status = self.describe_execution(arn).get("PipelineExecutionStatus")
        self.log.info("Started execution %s (%s, generation %s): %s", arn, display_name, generation, status)
        return {
            "PipelineExecutionArn": arn,
            "PipelineExecutionDisplayName": display_name,
            "PipelineExecutionStatus": status,
            "generation": generation,
            "attached": False,
        }

    def describe_execution(self, arn: str) -> dict[str, Any]:
        """
        Return DescribePipelineExecution's response.

        :param arn: The pipeline execution ARN.
        """
        return _strip(self._call("describe_pipeline_execution", PipelineExecutionArn=arn))

    def stop_execution(self, arn: str, *, conflict_attempts: int = 8) -> bool:
        """
        Stop an execution; retry ConflictException (steps racing) with backoff.

        :param arn: The pipeline execution ARN.
        :param conflict_attempts: How many times to try while SageMaker answers ConflictException.
        :return: True when a stop was requested, False when the execution was not Executing.
        """

        def conflict(exc: BaseException) -> bool:
            return error_code(exc) == "ConflictException"

        try:
            call_with_backoff(
                lambda: self._call("stop_pipeline_execution", PipelineExecutionArn=arn),
                op_name="stop_pipeline_execution",
                max_attempts=conflict_attempts,
                should_retry=conflict,
                sleep=self.sleep,
            )
        except ClientError as exc:
            if error_code(exc) == "ValidationException":
                self.log.info("Execution %s was not stopped: %s", arn, exc)
                return False
            raise
        self.log.info("Requested stop of execution %s", arn)
        return True

    def retry_execution(self, arn: str) -> bool:
        """
        Retry a Failed execution once, idempotently across sibling step tasks.

        The token is derived from the execution ARN and its LastModifiedTime, so step tasks retrying the same
        failure at the same time trigger one RetryPipelineExecution. No-op unless the execution is Failed.

        :param arn: The pipeline execution ARN.
        :return: True when a retry was requested, False when there was nothing to retry.
        """
        described = self.describe_execution(arn)
        status = described.get("PipelineExecutionStatus")
        if status != "Failed":
            self.log.info("Execution %s is %s: not retrying it", arn, status)
            return False
        token = retry_token(arn, _marker(described.get("LastModifiedTime")))
        try:
            self._call("retry_pipeline_execution", PipelineExecutionArn=arn, ClientRequestToken=token)
        except ClientError as exc:
            if error_code(exc) in {"ValidationException", "ConflictException"}:
                self.log.info("Execution %s was not retried: %s", arn, exc)
                return False
            raise
        self.log.info("Requested retry of execution %s", arn)
        return True

    # ---------------------------------------------------------------------------------------------- async
    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[Any]:
        """Yield the event loop's shared aiobotocore SageMaker client (``async with hook.async_client()``)."""
        yield await shared_async_client(self)

    async def _acall(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(client, operation)
        bucket = get_bucket(self.aws_conn_id, self._region_name, "sagemaker")

        async def once() -> dict[str, Any]:
            return await method(**kwargs)

        response = await acall_with_backoff(
            once,
            op_name=operation,
            max_attempts=self.max_attempts,
            bucket=bucket,
            sleep=self.async_sleep,
        )
        return _strip(response)

    async def async_find_execution(
        self, pipeline_name: str, run_key: RunKey, *, client: Any = None
    ) -> dict[str, Any] | None:
        """
        Return the summary of the latest-generation execution of this run key (with ``generation``), or None.

        :param pipeline_name: The pipeline name.
        :param run_key: The run key.
        :param client: An open aiobotocore client to reuse.
        """
        if client is None:
            async with self.async_client() as own:
                return await self.async_find_execution(pipeline_name, run_key, client=own)
        prefix = display_name_prefix(run_key)
        best: dict[str, Any] | None = None
        token: str | None = None
        while True:
            request = _executions_page_request(pipeline_name, token)
            page = await self._acall(client, "list_pipeline_executions", **request)
            for generation, summary in _run_executions_in_page(page, run_key):
                if best is None or generation > best["generation"]:
                    best = {**summary, "generation": generation}
            token = page.get("NextToken")
            if not token:
                break
        if best is None:
            self.log.debug("No execution of %s has a display name starting with %s", pipeline_name, prefix)
        return best

    async def async_describe_execution(self, arn: str, *, client: Any = None) -> dict[str, Any]:
        """
        Return DescribePipelineExecution's response.

        :param arn: The pipeline execution ARN.
        :param client: An open aiobotocore client to reuse.
        """
        if client is None:
            async with self.async_client() as own:
                return await self._acall(own, "describe_pipeline_execution", PipelineExecutionArn=arn)
        return await self._acall(client, "describe_pipeline_execution", PipelineExecutionArn=arn)

    async def async_list_execution_steps(self, arn: str, *, client: Any = None) -> list[dict[str, Any]]:
        """
        Return every step of an execution (all pages of ListPipelineExecutionSteps).

        :param arn: The pipeline execution ARN.
        :param client: An open aiobotocore client to reuse.
        """
        if client is None:
            async with self.async_client() as own:
                return await self.async_list_execution_steps(arn, client=own)
        steps: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"PipelineExecutionArn": arn, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = await self._acall(client, "list_pipeline_execution_steps", **kwargs)
            steps.extend(page.get("PipelineExecutionSteps", []))
            token = page.get("NextToken")
            if not token:
                return steps

    async def async_stop_execution(self, arn: str, *, conflict_attempts: int = 8) -> bool:
        """
        Stop an execution; retry ConflictException with backoff.

        :param arn: The pipeline execution ARN.
        :param conflict_attempts: How many times to try while SageMaker answers ConflictException.
        :return: True when a stop was requested, False when the execution was not Executing.
        """

        def conflict(exc: BaseException) -> bool:
            return error_code(exc) == "ConflictException"

        async with self.async_client() as client:

            async def once() -> dict[str, Any]:
                return await self._acall(client, "stop_pipeline_execution", PipelineExecutionArn=arn)

            try:
                await acall_with_backoff(
                    once,
                    op_name="stop_pipeline_execution",
                    max_attempts=conflict_attempts,
                    should_retry=conflict,
                    base=1.0,
                    cap=5.0,
                    sleep=self.async_sleep,
                )
            except ClientError as exc:
                if error_code(exc) == "ValidationException":
                    self.log.info("Execution %s was not stopped: %s", arn, exc)
                    return False
                raise
        self.log.info("Requested stop of execution %s", arn)
        return True

    async def async_retry_execution(self, arn: str) -> bool:
        """
        Retry a Failed execution once, idempotently across sibling step tasks (see :meth:`retry_execution`).

        :param arn: The pipeline execution ARN.
        :return: True when a retry was requested, False when there was nothing to retry.
        """
        async with self.async_client() as client:
            described = await self._acall(client, "describe_pipeline_execution", PipelineExecutionArn=arn)
            status = described.get("PipelineExecutionStatus")
            if status != "Failed":
                self.log.info("Execution %s is %s: not retrying it", arn, status)
                return False
            token = retry_token(arn, _marker(described.get("LastModifiedTime")))
            try:
                await self._acall(
                    client, "retry_pipeline_execution", PipelineExecutionArn=arn, ClientRequestToken=token
                )
            except ClientError as exc:
                if error_code(exc) in {"ValidationException", "ConflictException"}:
                    self.log.info("Execution %s was not retried: %s", arn, exc)
                    return False
                raise
        self.log.info("Requested retry of execution %s", arn)
        return True

    async def async_describe_job(self, job: str | Mapping[str, Any], *, client: Any = None) -> dict[str, Any]:
        """
        Describe the processing, training, transform or tuning job of a step.

        :param job: A job ARN, or a step's ``Metadata`` dict (``{"ProcessingJob": {"Arn": ...}}``).
        :param client: An open aiobotocore client to reuse.
        """
        if isinstance(job, Mapping):
            arn = next(
                (
                    (job.get(k) or {}).get("Arn")
                    for k in ("ProcessingJob", "TrainingJob", "TransformJob", "TuningJob")
                    if (job.get(k) or {}).get("Arn")
                ),
                None,
            )
            if arn is None:
                raise ValueError(f"Step metadata references no job: {dict(job)!r}")
        else:
            arn = job
        operation, param, name = _job_describe_call(arn)
        if client is None:
            async with self.async_client() as own:
                return await self._acall(own, operation, **{param: name})
        return await self._acall(client, operation, **{param: name})

    async def async_describe_tuning_job(self, name: str, *, client: Any = None) -> dict[str, Any]:
        """
        Return DescribeHyperParameterTuningJob's response.

        :param name: The tuning job name (the last part of its ARN).
        :param client: An open aiobotocore client to reuse.
        """
        if client is None:
            async with self.async_client() as own:
                return await self.async_describe_tuning_job(name, client=own)
        return await self._acall(
            client, "describe_hyper_parameter_tuning_job", HyperParameterTuningJobName=name
        )

    async def async_list_tuning_training_jobs(self, name: str, *, client: Any = None) -> list[dict[str, Any]]:
        """
        Return every training job of a tuning job, oldest first (all pages of
        ListTrainingJobsForHyperParameterTuningJob).

        :param name: The tuning job name.
        :param client: An open aiobotocore client to reuse.
        """
        if client is None:
            async with self.async_client() as own:
                return await self.async_list_tuning_training_jobs(name, client=own)
        jobs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "HyperParameterTuningJobName": name,
                "SortBy": "CreationTime",
                "SortOrder": "Ascending",
                "MaxResults": 100,
            }
            if token:
                kwargs["NextToken"] = token
            page = await self._acall(client, "list_training_jobs_for_hyper_parameter_tuning_job", **kwargs)
            jobs.extend(page.get("TrainingJobSummaries", []))
            token = page.get("NextToken")
            if not token:
                return jobs

    async def async_describe_model(self, model_name: str) -> dict[str, Any]:
        """
        Return DescribeModel's response (the model a model step created).

        :param model_name: The model name (the last part of its ARN).
        """
        async with self.async_client() as client:
            return await self._acall(client, "describe_model", ModelName=model_name)

    async def async_describe_model_package(self, model_package: str) -> dict[str, Any]:
        """
        Return DescribeModelPackage's response (the version a register-model step created).

        :param model_package: The model package ARN (or an unversioned package's name).
        """
        async with self.async_client() as client:
            return await self._acall(client, "describe_model_package", ModelPackageName=model_package)

    async def async_read_s3_json(self, uri: str) -> Any:
        """
        Read and parse a JSON object from S3 (a property file).

        :param uri: ``s3://bucket/key``.
        """
        if not uri.startswith("s3://"):
            raise ValueError(f"Not an S3 URI: {uri!r}")
        bucket_name, _, key = uri[len("s3://") :].partition("/")
        s3_hook = AwsBaseHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self._region_name,
            verify=self._verify,
            client_type="s3",
            config=self._config,
        )
        s3 = await shared_async_client(s3_hook)

        async def once() -> bytes:
            response = await s3.get_object(Bucket=bucket_name, Key=key)
            async with response["Body"] as stream:
                return await stream.read()

        body = await acall_with_backoff(
            once,
            op_name="s3.get_object",
            max_attempts=self.max_attempts,
            bucket=get_bucket(self.aws_conn_id, self._region_name, "s3"),
            sleep=self.async_sleep,
        )
        return json.loads(body)
