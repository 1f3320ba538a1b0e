"""Author Amazon SageMaker Pipelines as Airflow tasks.

The public classes are imported lazily so that importing this package (which Airflow does for every provider)
stays cheap and never pulls in the SageMaker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_OPERATORS = "airflow_provider_smpipe.operators"
_MODEL = "airflow_provider_smpipe.model"

_PUBLIC: dict[str, str] = {
    # The group and the launch task it adds.
    "SageMakerPipelineTaskGroup": "airflow_provider_smpipe.task_group",
    "sagemaker_pipeline_task_group": "airflow_provider_smpipe.task_group",
    "SageMakerPipelineLaunchOperator": f"{_OPERATORS}.launch",
    # Step operators.
    "SageMakerProcessingStepOperator": f"{_OPERATORS}.processing",
    "SageMakerTrainingStepOperator": f"{_OPERATORS}.training",
    "SageMakerTuningStepOperator": f"{_OPERATORS}.tuning",
    "SageMakerModelStepOperator": f"{_OPERATORS}.model",
    "SageMakerRegisterModelStepOperator": f"{_OPERATORS}.register_model",
    "SageMakerTransformStepOperator": f"{_OPERATORS}.transform",
    "SageMakerConditionStepOperator": f"{_OPERATORS}.condition",
    "SageMakerFailStepOperator": f"{_OPERATORS}.fail",
    "SageMakerCallbackStepOperator": f"{_OPERATORS}.callback",
    "SageMakerLambdaStepOperator": f"{_OPERATORS}.lambda_step",
    "SageMakerStepOperator": f"{_OPERATORS}.custom",
    # Step arguments.
    "ProcessingInput": f"{_MODEL}.steps.processing",
    "ProcessingOutput": f"{_MODEL}.steps.processing",
    "TrainingInput": f"{_MODEL}.steps.training",
    "ContinuousRange": f"{_MODEL}.steps.tuning",
    "IntegerRange": f"{_MODEL}.steps.tuning",
    "CategoricalRange": f"{_MODEL}.steps.tuning",
    # References, parameters and conditions.
    "Parameter": f"{_MODEL}.references",
    "Reference": f"{_MODEL}.references",
    "Condition": f"{_MODEL}.references",
    "join": f"{_MODEL}.references",
    "execution_variable": f"{_MODEL}.references",
    "all_of": f"{_MODEL}.references",
    "any_of": f"{_MODEL}.references",
    "not_": f"{_MODEL}.references",
    "OutputParameterRef": f"{_MODEL}.output_parameters",
    # The escape hatch's compile context, and the error bad input raises.
    "CompileContext": "airflow_provider_smpipe.compiler.context",
    "PipelineDefinitionError": "airflow_provider_smpipe.exceptions",
}

__all__ = [
    "CategoricalRange",
    "CompileContext",
    "Condition",
    "ContinuousRange",
    "IntegerRange",
    "OutputParameterRef",
    "Parameter",
    "PipelineDefinitionError",
    "ProcessingInput",
    "ProcessingOutput",
    "Reference",
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
    "execution_variable",
    "join",
    "not_",
    "sagemaker_pipeline_task_group",
]

if TYPE_CHECKING:
    from airflow_provider_smpipe.compiler.context import CompileContext
    from airflow_provider_smpipe.exceptions import PipelineDefinitionError
    from airflow_provider_smpipe.model.output_parameters import OutputParameterRef
    from airflow_provider_smpipe.model.references import (
        Condition,
        Parameter,
        Reference,
        all_of,
        any_of,
        execution_variable,
        join,
        not_,
    )
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
