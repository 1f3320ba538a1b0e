"""SageMakerPipelineHook: upsert against moto; start/attach/stop/retry against a small fake client."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from airflow_provider_smpipe.executions import RunKey, client_request_token, execution_display_name
from airflow_provider_smpipe.hooks.pipeline import (
    TAG_DAG_ID,
    TAG_DEFINITION_SHA,
    TAG_GROUP_ID,
    PipelineDefinitionTooLargeError,
    PipelineOwnershipError,
    SageMakerPipelineHook,
)

MOTO_CONN_ID = "smpipe_moto"
ROLE = "arn:aws:iam::123456789012:role/pipeline"
KEY = RunKey("dag_a", "manual__2026-11-22T10:00:00+00:00", "grp")


def _definition(n: int) -> str:
    return json.dumps({"Version": "2020-12-01", "Steps": [], "n": n})


def _name() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


# ------------------------------------------------------------------------------------------ upsert (moto)
@pytest.fixture
def moto_hook(moto_url: str) -> SageMakerPipelineHook:
    return SageMakerPipelineHook(aws_conn_id=MOTO_CONN_ID)


def test_upsert_created_unchanged_updated(moto_hook: SageMakerPipelineHook) -> None:
    name = _name()
    common = {"pipeline_name": name, "role_arn": ROLE, "dag_id": "dag_a", "group_id": "grp"}
    created = moto_hook.upsert_pipeline(definition=_definition(1), tags={"team": "ml"}, **common)
    assert created["action"] == "created"
    arn = created["PipelineArn"]
    tags = moto_hook.get_pipeline_tags(arn)
    assert tags[TAG_DAG_ID] == "dag_a"
    assert tags[TAG_GROUP_ID] == "grp"
    assert tags["team"] == "ml"

    assert moto_hook.upsert_pipeline(definition=_definition(1), **common) == {
        "PipelineArn": arn,
        "action": "unchanged",
    }
    assert moto_hook.upsert_pipeline(definition=_definition(2), **common)["action"] == "updated"
    described = moto_hook.conn.describe_pipeline(PipelineName=name)
    assert described["PipelineDefinition"] == _definition(2)
    sha_after = moto_hook.get_pipeline_tags(arn)[TAG_DEFINITION_SHA]
    assert sha_after != tags[TAG_DEFINITION_SHA]
    assert moto_hook.upsert_pipeline(definition=_definition(2), **common)["action"] == "unchanged"
    # A changed role is a change too.
    other_role = "arn:aws:iam::123456789012:role/other"
    changed = {**common, "role_arn": other_role}
    assert moto_hook.upsert_pipeline(definition=_definition(2), **changed)["action"] == "updated"


def test_upsert_refuses_foreign_pipelines(moto_hook: SageMakerPipelineHook) -> None:
    name = _name()
    moto_hook.upsert_pipeline(
        pipeline_name=name, definition=_definition(1), role_arn=ROLE, dag_id="dag_a", group_id="grp"
    )
    with pytest.raises(PipelineOwnershipError, match="dag_a"):
        moto_hook.upsert_pipeline(
            pipeline_name=name, definition=_definition(2), role_arn=ROLE, dag_id="dag_b", group_id="grp"
        )
    with pytest.raises(PipelineOwnershipError, match="grp"):
        moto_hook.upsert_pipeline(
            pipeline_name=name, definition=_definition(2), role_arn=ROLE, dag_id="dag_a", group_id="other"
        )

    untagged = _name()
    boto3.client("sagemaker", endpoint_url=moto_hook.conn.meta.endpoint_url).create_pipeline(
        PipelineName=untagged, PipelineDefinition=_definition(0), RoleArn=ROLE
    )
    with pytest.raises(PipelineOwnershipError, match="no smpipe"):
        moto_hook.upsert_pipeline(
            pipeline_name=untagged, definition=_definition(1), role_arn=ROLE, dag_id="dag_a", group_id="grp"
        )
    # Nothing was overwritten.
    described = moto_hook.conn.describe_pipeline(PipelineName=name)
    assert described["PipelineDefinition"] == _definition(1)


def test_upsert_too_large(moto_hook: SageMakerPipelineHook) -> None:
    with pytest.raises(PipelineDefinitionTooLargeError, match="1,048,576"):
        moto_hook.upsert_pipeline(
            pipeline_name=_name(), definition="x" * 1_048_577, role_arn=ROLE, dag_id="d", group_id="g"
        )


def test_start_or_attach_against_moto(moto_hook: SageMakerPipelineHook) -> None:
    name = _name()
    moto_hook.upsert_pipeline(
        pipeline_name=name, definition=_definition(1), role_arn=ROLE, dag_id="dag_a", group_id="grp"
    )
    first = moto_hook.start_or_attach_execution(pipeline_name=name, run_key=KEY, parameters={"x": "1"})
    assert first["generation"] == 0
    assert not first["attached"]
    assert first["PipelineExecutionDisplayName"] == execution_display_name(KEY, 0)
    again = moto_hook.start_or_attach_execution(pipeline_name=name, run_key=KEY, parameters={"x": "1"})
    assert again["attached"]
    assert again["PipelineExecutionArn"] == first["PipelineExecutionArn"]


# ----------------------------------------------------------------------------- executions (fake client)
class FakeSageMaker:
    """What moto lacks: token idempotency, real statuses, stop and retry."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.by_token: dict[str, str] = {}
        self.visible: set[str] = set()
        self.calls: list[str] = []
        self.stop_errors: list[ClientError] = []
        self.retry_tokens: list[str] = []
        self.throttle: dict[str, int] = {}

    def _maybe_throttle(self, op: str) -> None:
        self.calls.append(op)
        if self.throttle.get(op):
            self.throttle[op] -= 1
            raise _client_error("ThrottlingException", "Rate exceeded")

    def add(self, display_name: str, status: str, *, visible: bool = True) -> str:
        arn = f"arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/{uuid.uuid4().hex[:12]}"
        self.executions[arn] = {
            "PipelineExecutionArn": arn,
            "PipelineExecutionDisplayName": display_name,
            "PipelineExecutionStatus": status,
            "CreationTime": datetime.now(UTC) + timedelta(seconds=len(self.executions)),
            "LastModifiedTime": datetime(2026, 1, 1, tzinfo=UTC),
        }
        if visible:
            self.visible.add(arn)
        return arn

    def list_pipeline_executions(self, **kwargs: Any) -> dict[str, Any]:
        self._maybe_throttle("list_pipeline_executions")
        items = [e for a, e in self.executions.items() if a in self.visible]
        items.sort(key=lambda e: e["CreationTime"], reverse=True)
        # Pages of one to exercise paging.
        start = int(kwargs.get("NextToken") or 0)
        page: dict[str, Any] = {"PipelineExecutionSummaries": items[start : start + 1]}
        if start + 1 < len(items):
            page["NextToken"] = str(start + 1)
        return page

    def start_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        self._maybe_throttle("start_pipeline_execution")
        token = kwargs["ClientRequestToken"]
        if token not in self.by_token:
            self.by_token[token] = self.add(kwargs["PipelineExecutionDisplayName"], "Executing")
        return {"PipelineExecutionArn": self.by_token[token]}

    def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, Any]:
        self._maybe_throttle("describe_pipeline_execution")
        execution = self.executions[PipelineExecutionArn]
        if execution["PipelineExecutionStatus"] == "Stopping":
            execution["PipelineExecutionStatus"] = "Stopped"
            return {**execution, "PipelineExecutionStatus": "Stopping"}
        return dict(execution)

    def stop_pipeline_execution(self, PipelineExecutionArn: str, **_: Any) -> dict[str, Any]:
        self._maybe_throttle("stop_pipeline_execution")
        if self.stop_errors:
            raise self.stop_errors.pop(0)
        execution = self.executions[PipelineExecutionArn]
        if execution["PipelineExecutionStatus"] != "Executing":
            raise _client_error("ValidationException", "Only 'Executing' pipelines can be stopped")
        execution["PipelineExecutionStatus"] = "Stopping"
        return {"PipelineExecutionArn": PipelineExecutionArn}

    def retry_pipeline_execution(self, PipelineExecutionArn: str, ClientRequestToken: str) -> dict[str, Any]:
        self._maybe_throttle("retry_pipeline_execution")
        if ClientRequestToken in self.retry_tokens:
            return {"PipelineExecutionArn": PipelineExecutionArn}
        execution = self.executions[PipelineExecutionArn]
        if execution["PipelineExecutionStatus"] != "Failed":
            raise _client_error("ValidationException", "not failed")
        self.retry_tokens.append(ClientRequestToken)
        execution["PipelineExecutionStatus"] = "Executing"
        execution["LastModifiedTime"] += timedelta(seconds=1)
        return {"PipelineExecutionArn": PipelineExecutionArn}


@pytest.fixture
def fake() -> FakeSageMaker:
    return FakeSageMaker()


@pytest.fixture
def hook(fake: FakeSageMaker) -> SageMakerPipelineHook:
    hook = SageMakerPipelineHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = fake  # the cached boto3 client
    hook.sleep = lambda _s: None
    return hook


def _start(hook: SageMakerPipelineHook, key: RunKey = KEY) -> dict[str, Any]:
    return hook.start_or_attach_execution(pipeline_name="p", run_key=key, parameters={"a": "1"})


def test_generation_zero_then_attach(hook: SageMakerPipelineHook, fake: FakeSageMaker) -> None:
    fake.add("unrelated-run-deadbeef-g0", "Failed")
    first = _start(hook)
    assert (first["generation"], first["attached"]) == (0, False)
    assert first["PipelineExecutionStatus"] == "Executing"
    second = _start(hook)
    assert second["attached"]
    assert second["PipelineExecutionArn"] == first["PipelineExecutionArn"]
    fake.executions[first["PipelineExecutionArn"]]["PipelineExecutionStatus"] = "Succeeded"
    assert _start(hook)["attached"]
    assert fake.calls.count("start_pipeline_execution") == 1


@pytest.mark.parametrize("ended", ["Failed", "Stopped"])
def test_new_generation_after_failed_or_stopped(
    hook: SageMakerPipelineHook, fake: FakeSageMaker, ended: str
) -> None:
    first = _start(hook)
    fake.executions[first["PipelineExecutionArn"]]["PipelineExecutionStatus"] = ended
    second = _start(hook)
    assert (second["generation"], second["attached"]) == (1, False)
    assert second["PipelineExecutionDisplayName"].endswith("-g1")
    assert fake.by_token[client_request_token(KEY, 1)] == second["PipelineExecutionArn"]
    # The other run's generations do not interfere.
    other = _start(hook, RunKey(KEY.dag_id, "manual__other", KEY.group_id))
    assert other["generation"] == 0


def test_stopping_waits_then_starts_next(hook: SageMakerPipelineHook, fake: FakeSageMaker) -> None:
    first = _start(hook)
    fake.executions[first["PipelineExecutionArn"]]["PipelineExecutionStatus"] = "Stopping"
    second = _start(hook)
    assert second["generation"] == 1
    assert fake.executions[first["PipelineExecutionArn"]]["PipelineExecutionStatus"] == "Stopped"


def test_retried_launch_after_crash_never_starts_a_second_execution(
    hook: SageMakerPipelineHook, fake: FakeSageMaker
) -> None:
    # The first launch's StartPipelineExecution reached SageMaker, then the worker died; the new execution
    # is not listed yet (eventual consistency): the retried launch sends the same token.
    token = client_request_token(KEY, 0)
    arn = fake.add(execution_display_name(KEY, 0), "Executing", visible=False)
    fake.by_token[token] = arn
    retried = _start(hook)
    assert retried["PipelineExecutionArn"] == arn
    assert len(fake.executions) == 1


def test_throttling_is_retried(hook: SageMakerPipelineHook, fake: FakeSageMaker) -> None:
    fake.throttle = {"list_pipeline_executions": 2, "start_pipeline_execution": 1}
    assert _start(hook)["generation"] == 0
    assert fake.calls.count("start_pipeline_execution") == 2


def test_throttling_gives_up_after_bounded_attempts(hook: SageMakerPipelineHook, fake: FakeSageMaker) -> None:
    fake.throttle = {"list_pipeline_executions": 100}
    with pytest.raises(ClientError):
        _start(hook)
    assert fake.calls.count("list_pipeline_executions") == hook.max_attempts


def test_stop_retries_conflicts_and_reports_not_executing(
    hook: SageMakerPipelineHook, fake: FakeSageMaker
) -> None:
    arn = _start(hook)["PipelineExecutionArn"]
    fake.stop_errors = [_client_error("ConflictException", "busy", 409)] * 2
    assert hook.stop_execution(arn) is True
    assert fake.calls.count("stop_pipeline_execution") == 3
    assert hook.stop_execution(arn) is False  # now Stopping/Stopped


def test_retry_is_one_retry_for_siblings(hook: SageMakerPipelineHook, fake: FakeSageMaker) -> None:
    arn = _start(hook)["PipelineExecutionArn"]
    assert hook.retry_execution(arn) is False  # Executing: nothing to do
    fake.executions[arn]["PipelineExecutionStatus"] = "Failed"
    # Two siblings computed the token from the same failure before either call landed.
    from airflow_provider_smpipe.executions import retry_token

    marker = fake.executions[arn]["LastModifiedTime"].isoformat()
    assert hook.retry_execution(arn) is True
    fake.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=retry_token(arn, marker))
    assert fake.retry_tokens == [retry_token(arn, marker)]
    assert hook.retry_execution(arn) is False  # Executing again


def test_async_calls(fake: FakeSageMaker) -> None:
    from contextlib import asynccontextmanager

    class AsyncFake:
        def __getattr__(self, name: str) -> Any:
            method = getattr(fake, name)

            async def call(**kwargs: Any) -> Any:
                return method(**kwargs)

            return call

    class AsyncHook(SageMakerPipelineHook):
        @asynccontextmanager
        async def async_client(self):  # type: ignore[no-untyped-def,override]
            yield AsyncFake()

    hook = AsyncHook(aws_conn_id=None, region_name="us-east-1")

    async def no_sleep(_s: float) -> None:
        return None

    hook.async_sleep = no_sleep
    hook.__dict__["conn"] = fake
    hook.sleep = lambda _s: None

    async def scenario() -> None:
        assert await hook.async_find_execution("p", KEY) is None
        first = _start(hook)
        fake.executions[first["PipelineExecutionArn"]]["PipelineExecutionStatus"] = "Failed"
        second = _start(hook)
        found = await hook.async_find_execution("p", KEY)
        assert found is not None
        assert found["generation"] == 1
        assert found["PipelineExecutionArn"] == second["PipelineExecutionArn"]
        fake.throttle = {"describe_pipeline_execution": 2}
        described = await hook.async_describe_execution(second["PipelineExecutionArn"])
        assert described["PipelineExecutionStatus"] == "Executing"
        fake.stop_errors = [_client_error("ConflictException", "busy", 409)]
        assert await hook.async_stop_execution(second["PipelineExecutionArn"]) is True
        assert await hook.async_stop_execution(second["PipelineExecutionArn"]) is False
        fake.executions[first["PipelineExecutionArn"]]["PipelineExecutionStatus"] = "Failed"
        results = await asyncio.gather(
            *(hook.async_retry_execution(first["PipelineExecutionArn"]) for _ in range(3))
        )
        assert len(fake.retry_tokens) == 1
        assert results.count(True) >= 1

    asyncio.run(scenario())
