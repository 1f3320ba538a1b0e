"""What a step task does at run time: wait for its step of the group's execution, then end in its state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowSkipException

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from airflow_provider_smpipe.task_group import SageMakerPipelineTaskGroup


class StepRuntimeMixin:
    """Run-time side of the step operators (mixed into ``SageMakerPipelineStepOperator``).

    ``execute`` reads the execution ARN the group's launch task returned and defers to
    ``SageMakerPipelineStepTrigger``, which follows the step, streams its job's logs into this task's log and
    ends the task from the triggerer (success with the step's result as XCom, failed, or skipped).
    """

    task_id: str
    step_name: str
    pipeline_group: SageMakerPipelineTaskGroup
    log: Any

    property_file_locations: Callable[[], list[dict[str, str]]]

    start_from_trigger: bool
    start_trigger_args: Any

    def trigger_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Plain-data kwargs of the step trigger. Without ``execution_arn`` the trigger finds this run's
        execution by its display name; empty ``dag_id``/``run_id`` come from its task instance."""
        group = self.pipeline_group
        kwargs: dict[str, Any] = {
            "pipeline_name": group.resolved_pipeline_name(),
            "step_name": self.step_name,
            "dag_id": "",
            "run_id": "",
            "group_id": group.group_id or "",
            "execution_arn": None,
            "aws_conn_id": group.aws_conn_id,
            "region_name": group.region_name,
            "poll_interval": group.poll_interval,
            "end_from_trigger": True,
            "retry_failed_execution": "auto",
            "property_files": self.property_file_locations(),
        }
        kwargs.update(overrides)
        return kwargs

    def enable_start_from_trigger(self) -> None:
        """Start this task straight in the triggerer: no worker slot at any point of the step's life."""
        from airflow.triggers.base import StartTriggerArgs

        self.start_trigger_args = StartTriggerArgs(
            trigger_cls="airflow_provider_smpipe.triggers.pipeline_step.SageMakerPipelineStepTrigger",
            trigger_kwargs=self.trigger_kwargs(),
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )
        self.start_from_trigger = True

    def build_trigger(self, context: Context, execution_arn: str | None) -> Any:
        from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger

        ti = context["ti"]
        return SageMakerPipelineStepTrigger(
            **self.trigger_kwargs(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                execution_arn=execution_arn,
                retry_failed_execution=ti.try_number > 1,
            )
        )

    def execute(self, context: Context) -> Any:
        """The worker path (``airflow dags test``, or a group with ``start_from_trigger=False``)."""
        group = self.pipeline_group
        launch = context["ti"].xcom_pull(task_ids=group.launch_task.task_id) or {}
        execution_arn = launch.get("execution_arn")
        if execution_arn:
            self.log.info(
                "Following step %s of pipeline execution %s",
                self.step_name,
                launch.get("execution_display_name"),
            )
        self.defer(trigger=self.build_trigger(context, execution_arn), method_name="execute_complete")  # type: ignore[attr-defined]

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the task's state (when the trigger does not end the task itself)."""
        if not event:
            raise AirflowException(f"step {self.step_name}: the trigger ended without an event")
        status = event.get("status")
        reason = event.get("reason") or ""
        if status == "success":
            return event.get("result")
        if status == "skipped":
            raise AirflowSkipException(reason or f"step {self.step_name} did not run")
        lines = event.get("last_log_lines") or []
        tail = ("\nLast log lines:\n" + "\n".join(lines)) if lines else ""
        raise AirflowException(f"SageMaker step {self.step_name} {status}: {reason}{tail}")
