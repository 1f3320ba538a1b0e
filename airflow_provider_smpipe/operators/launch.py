"""The task a pipeline group adds to compile, create or update, and start its SageMaker pipeline."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.links.sagemaker import SageMakerPipelineExecutionLink

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_smpipe.task_group import SageMakerPipelineTaskGroup

log = logging.getLogger(__name__)


class SageMakerPipelineLaunchOperator(BaseOperator):
    """Compile the group into a pipeline definition, create or update the pipeline, start (or re-attach to)
    this DAG run's execution. Added by :class:`~airflow_provider_smpipe.SageMakerPipelineTaskGroup`; not meant
    to be created by hand.

    The execution is found again by its display name and started with a deterministic client request token, so
    a retried launch re-attaches instead of starting a second execution. Returns (XCom) the pipeline and
    execution ARNs.

    :param group_id: The pipeline group's id.
    :param parameter_values: Per-run parameter values. (templated)
    :param aws_conn_id: The Airflow AWS connection.
    :param region_name: The AWS region.
    """

    template_fields: Sequence[str] = ("parameter_values",)
    template_fields_renderers = {"parameter_values": "json"}
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    ui_color = "#c9e4f6"

    def __init__(
        self,
        *,
        group_id: str,
        parameter_values: Mapping[str, Any] | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.group_id = group_id
        self.parameter_values = dict(parameter_values or {})
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @property
    def pipeline_group(self) -> SageMakerPipelineTaskGroup:
        return self.dag.task_group_dict[self.group_id]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
        from airflow_provider_smpipe.compiler.sdk import compile_definition
        from airflow_provider_smpipe.executions import RunKey
        from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook

        group = self.pipeline_group
        hook = SageMakerPipelineHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        refused: str | None = None
        try:
            # Every rendered value is checked before anything is created in AWS.
            spec = build_pipeline_spec(group, context)
            parameters = group.execution_parameters(self.parameter_values)
            self.log.info(
                "Compiling %d steps of group %s into pipeline %s", len(spec.steps), group.group_id, spec.name
            )
            definition = compile_definition(
                spec,
                hook.get_session(region_name=hook.conn_region_name),
                endpoint_url=hook.conn_config.endpoint_url,
            )
        except PipelineDefinitionError as error:
            refused = str(error)
        if refused is not None:
            # A refused pipeline fails the task at once, without retries (the same DAG fails the same way), with
            # the provider's one-line message: raised outside the handler, so no SDK traceback hangs under it.
            self.log.error("%s", refused)
            raise AirflowFailException(refused)
        upsert = hook.upsert_pipeline(
            pipeline_name=spec.name,
            definition=definition,
            role_arn=spec.role_arn,
            dag_id=self.dag_id,
            group_id=self.group_id,
            tags=dict(spec.tags),
            description=spec.description,
            parallelism=spec.max_parallel_steps,
        )
        self.log.info("Pipeline %s %s (%s)", spec.name, upsert["action"], upsert["PipelineArn"])
        dag_run = context["dag_run"]
        run_key = RunKey(dag_id=self.dag_id, run_id=str(dag_run.run_id), group_id=self.group_id)
        execution = hook.start_or_attach_execution(
            pipeline_name=spec.name,
            run_key=run_key,
            parameters=parameters,
            description=f"Airflow DAG {self.dag_id}, run {dag_run.run_id}, group {self.group_id}",
            parallelism=spec.max_parallel_steps,
        )
        verb = "Re-attached to" if execution["attached"] else "Started"
        self.log.info(
            "%s execution %s (%s, status %s) with parameters %s",
            verb,
            execution["PipelineExecutionDisplayName"],
            execution["PipelineExecutionArn"],
            execution["PipelineExecutionStatus"],
            json.dumps(parameters, sort_keys=True),
        )
        SageMakerPipelineExecutionLink.persist(
            context=context,
            operator=self,
            region_name=hook.conn_region_name,
            aws_partition=hook.conn_partition,
            execution_arn=execution["PipelineExecutionArn"],
            pipeline_name=spec.name,
        )
        return {
            "pipeline_name": spec.name,
            "pipeline_arn": upsert["PipelineArn"],
            "pipeline_action": upsert["action"],
            "execution_arn": execution["PipelineExecutionArn"],
            "execution_display_name": execution["PipelineExecutionDisplayName"],
            "generation": execution["generation"],
            "attached": execution["attached"],
        }
