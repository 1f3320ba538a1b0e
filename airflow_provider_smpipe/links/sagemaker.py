"""Extra links from Airflow tasks to SageMaker Studio and the CloudWatch console."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class SageMakerPipelineExecutionLink(BaseAwsLink):
    """The pipeline execution in SageMaker Studio (on the launch task and every step task)."""

    name = "SageMaker Pipeline Execution"
    key = "smpipe_execution"
    format_str = "https://studio.{region_name}.sagemaker.{aws_domain}/pipelines/{pipeline_name}/executions/{execution_id}"

    def format_link(self, **kwargs: Any) -> str:
        arn = str(kwargs.get("execution_arn", ""))
        kwargs["execution_id"] = arn.rsplit("/", 1)[-1]
        return super().format_link(**kwargs)


class SageMakerStepJobLink(BaseAwsLink):
    """The step's processing or training job in the SageMaker console."""

    name = "SageMaker Job"
    key = "smpipe_step_job"
    format_str = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/{job_kind}/{job_name}"


class SageMakerStepLogsLink(BaseAwsLink):
    """The step job's CloudWatch log streams."""

    name = "CloudWatch Logs"
    key = "smpipe_step_logs"
    format_str = (
        BASE_AWS_CONSOLE_LINK + "/cloudwatch/home?region={region_name}#logsV2:log-groups/log-group/"
        "{log_group}/log-events$3FlogStreamNameFilter$3D{job_name}"
    )

    def format_link(self, **kwargs: Any) -> str:
        if "log_group" in kwargs:
            kwargs["log_group"] = quote(quote(str(kwargs["log_group"]), safe=""), safe="").replace("%", "$")
        return super().format_link(**kwargs)


class SageMakerModelPackageLink(BaseAwsLink):
    """The versions of the model package group a register-model step added a version to, in SageMaker Studio."""

    name = "SageMaker Model Package"
    key = "smpipe_model_package"
    format_str = (
        "https://studio.{region_name}.sagemaker.{aws_domain}/models/registered-models/"
        "{model_package_group_name}/versions"
    )

    def format_link(self, **kwargs: Any) -> str:
        if "model_package_group_name" in kwargs:
            kwargs["model_package_group_name"] = quote(str(kwargs["model_package_group_name"]), safe="")
        return super().format_link(**kwargs)
