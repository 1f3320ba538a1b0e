"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_smpipe import __version__

    return {
        "package-name": "airflow-provider-smpipe",
        "name": "SageMaker Pipelines (smpipe)",
        "description": "Author Amazon SageMaker Pipelines as Airflow tasks and watch every step, with its "
        "logs, in Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Amazon SageMaker Pipelines",
                "external-doc-url": "https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines.html",
                "tags": ["aws"],
            }
        ],
        "operators": [
            {
                "integration-name": "Amazon SageMaker Pipelines",
                "python-modules": [
                    "airflow_provider_smpipe.operators.launch",
                    "airflow_provider_smpipe.operators.processing",
                    "airflow_provider_smpipe.operators.training",
                    "airflow_provider_smpipe.operators.tuning",
                    "airflow_provider_smpipe.operators.condition",
                    "airflow_provider_smpipe.operators.fail",
                    "airflow_provider_smpipe.operators.model",
                    "airflow_provider_smpipe.operators.register_model",
                    "airflow_provider_smpipe.operators.custom",
                    "airflow_provider_smpipe.operators.transform",
                    "airflow_provider_smpipe.operators.callback",
                    "airflow_provider_smpipe.operators.lambda_step",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon SageMaker Pipelines",
                "python-modules": [
                    "airflow_provider_smpipe.hooks.pipeline",
                    "airflow_provider_smpipe.hooks.step_logs",
                    "airflow_provider_smpipe.hooks.callback",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Amazon SageMaker Pipelines",
                "python-modules": ["airflow_provider_smpipe.triggers.pipeline_step"],
            }
        ],
        "extra-links": [
            "airflow_provider_smpipe.links.sagemaker.SageMakerPipelineExecutionLink",
            "airflow_provider_smpipe.links.sagemaker.SageMakerStepJobLink",
            "airflow_provider_smpipe.links.sagemaker.SageMakerStepLogsLink",
            "airflow_provider_smpipe.links.sagemaker.SageMakerModelPackageLink",
        ],
    }
