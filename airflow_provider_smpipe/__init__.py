"""Author Amazon SageMaker Pipelines as Airflow tasks.

The public classes are imported lazily so that importing this package (which Airflow does for every provider)
stays cheap and never pulls in the SageMaker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    "SageMakerPipelineTaskGroup": "airflow_provider_smpipe.task_group",
    "sagemaker_pipeline_task_group": "airflow_provider_smpipe.task_group",
    "SageMakerProcessingStepOperator": "airflow_provider_smpipe.operators.processing",
    "SageMakerTrainingStepOperator": "airflow_provider_smpipe.operators.training",
    "SageMakerTuningStepOperator": "airflow_provider_smpipe.operators.tuning",
    "ContinuousRange": "airflow_provider_smpipe.model.steps.tuning",
    "IntegerRange": "airflow_provider_smpipe.model.steps.tuning",
    "CategoricalRange": "airflow_provider_smpipe.model.steps.tuning",
    "SageMakerConditionStepOperator": "airflow_provider_smpipe.operators.condition",
    "SageMakerFailStepOperator": "airflow_provider_smpipe.operators.fail",
    "SageMakerModelStepOperator": "airflow_provider_smpipe.operators.model",
    "SageMakerRegisterModelStepOperator": "airflow_provider_smpipe.operators.register_model",
    "SageMakerStepOperator": "airflow_provider_smpipe.operators.custom",
    "SageMakerTransformStepOperator": "airflow_provider_smpipe.operators.transform",
    "SageMakerCallbackStepOperator": "airflow_provider_smpipe.operators.callback",
    "SageMakerLambdaStepOperator": "airflow_provider_smpipe.operators.lambda_step",
    "OutputParameterRef": "airflow_provider_smpipe.model.output_parameters",
    "SageMakerPipelineLaunchOperator": "airflow_provider_smpipe.operators.launch",
    "Parameter": "airflow_provider_smpipe.model.references",
    "ProcessingInput": "airflow_provider_smpipe.model.steps.processing",
    "ProcessingOutput": "airflow_provider_smpipe.model.steps.processing",
    "TrainingInput": "airflow_provider_smpipe.model.steps.training",
    "all_of": "airflow_provider_smpipe.model.references",
    "any_of": "airflow_provider_smpipe.model.references",
    "not_": "airflow_provider_smpipe.model.references",
}

__all__ = [
    "CategoricalRange",
    "ContinuousRange",
    "IntegerRange",
    "OutputParameterRef",
    "Parameter",
    "ProcessingInput",
    "ProcessingOutput",
    "SageMakerCallbackStepOperator",
    "SageMakerConditionStepOperator",
    "SageMakerFailStepOperator",
    "SageMakerLambdaStepOperator",
    "SageMakerModelStepOperator",
    "SageMakerPipelineLaunchOperator",
    "SageMakerPipelineTaskGroup",
    "SageMakerProcessingStepOperator",
    "SageMakerRegisterModelStepOperator",
    "SageMakerStepOperator",
    "SageMakerTrainingStepOperator",
    "SageMakerTransformStepOperator",
    "SageMakerTuningStepOperator",
    "TrainingInput",
    "__version__",
    "all_of",
    "any_of",
    "not_",
    "sagemaker_pipeline_task_group",
]

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.output_parameters import OutputParameterRef
    from airflow_provider_smpipe.model.references import Parameter, all_of, any_of, not_
    from airflow_provider_smpipe.model.steps.processing import ProcessingInput, ProcessingOutput
    from airflow_provider_smpipe.model.steps.training import TrainingInput
    from airflow_provider_smpipe.model.steps.tuning import CategoricalRange, ContinuousRange, IntegerRange
    from airflow_provider_smpipe.operators.callback import SageMakerCallbackStepOperator
    from airflow_provider_smpipe.operators.condition import SageMakerConditionStepOperator
    from airflow_provider_smpipe.operators.custom import SageMakerStepOperator
    from airflow_provider_smpipe.operators.fail import SageMakerFailStepOperator
    from airflow_provider_smpipe.operators.lambda_step import SageMakerLambdaStepOperator
    from airflow_provider_smpipe.operators.launch import SageMakerPipelineLaunchOperator
    from airflow_provider_smpipe.operators.model import SageMakerModelStepOperator
    from airflow_provider_smpipe.operators.processing import SageMakerProcessingStepOperator
    from airflow_provider_smpipe.operators.register_model import SageMakerRegisterModelStepOperator
    from airflow_provider_smpipe.operators.training import SageMakerTrainingStepOperator
    from airflow_provider_smpipe.operators.transform import SageMakerTransformStepOperator
    from airflow_provider_smpipe.operators.tuning import SageMakerTuningStepOperator
    from airflow_provider_smpipe.task_group import SageMakerPipelineTaskGroup, sagemaker_pipeline_task_group


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
