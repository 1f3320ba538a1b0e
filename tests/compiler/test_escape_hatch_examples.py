"""The examples of docs/escape-hatch.md, proven: each is a DAG file of tests/fixtures/escape_hatch_examples that
parses without the SageMaker SDK, compiles with the machinery of the ``render`` command (an in-process moto, nothing
reaches AWS), and builds the step it claims, with request arguments botocore accepts. The guide's code blocks ARE
these files' code: ``python tests/compiler/test_escape_hatch_examples.py --write`` copies them into the guide, and
:func:`test_the_guide_shows_the_examples_as_they_are` fails when the two differ.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from request_shapes import request_problems

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "escape_hatch_examples"
GUIDE = Path(__file__).parents[2] / "docs" / "escape-hatch.md"
GROUP = "pipeline"
BUCKET = "smpipe-examples"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}

MISTAKES = sorted(p.stem for p in EXAMPLES.glob("mistake_*.py"))
#: Every example that compiles: the escape-hatch step it builds and that step's SageMaker type.
STEPS = {
    "emr": ("aggregate", "EMR"),
    "emr_serverless": ("sessionize", "EMRServerless"),
    "quality_check": ("data_quality", "QualityCheck"),
    "clarify_check": ("data_bias", "ClarifyCheck"),
    "automl": ("automl", "AutoML"),
    "notebook_job": ("churn_report", "Training"),
    "endpoint": ("endpoint", "Endpoint"),
    "inference_component": ("deploy_component", "InferenceComponent"),
    "job": ("fine_tune", "Job"),
    "lineage": ("record_lineage", "Lineage"),
    "cleanup": ("cleanup", "Cleanup"),
    "for_each": ("score_regions", "ForEach"),
    "function_step": ("count_positives", "Training"),
    "sdk_processing": ("prepare", "Processing"),
    "sdk_training": ("train", "Training"),
    "sdk_tuning": ("tune", "Tuning"),
    "sdk_transform": ("score", "Transform"),
    "sdk_model": ("model", "Model"),
    "sdk_register_model": ("register", "RegisterModel"),
    "sdk_condition": ("quality_gate", "Condition"),
    "sdk_fail": ("stop_here", "Fail"),
    "sdk_callback": ("labelling", "Callback"),
    "sdk_lambda": ("notify", "Lambda"),
}


# ------------------------------------------------------------------------------------------------ helpers
@functools.cache
def _render(name: str) -> str:
    """The example's definition, compiled as ``python -m airflow_provider_smpipe render <file> pipeline`` does."""
    from airflow_provider_smpipe.__main__ import render

    return render(str(EXAMPLES / f"{name}.py"), GROUP)


def _definition(name: str) -> dict[str, Any]:
    return json.loads(_render(name))  # type: ignore[no-any-return]


def _step(name: str, step_name: str | None = None) -> dict[str, Any]:
    step_name = step_name or STEPS[name][0]
    steps = {step["Name"]: step for step in _definition(name)["Steps"]}
    return steps[step_name]  # type: ignore[no-any-return]


def _mistake_message(name: str) -> str:
    from airflow_provider_smpipe.exceptions import PipelineDefinitionError

    try:
        _render(name)
    except PipelineDefinitionError as error:
        return str(error)
    raise AssertionError(f"{name} compiled, but it is kept as a mistake that must not")


def _evaluate(value: Any, variables: dict[str, str]) -> Any:
    """A definition value with ``Get`` and ``Std:Join`` evaluated (``variables``: what ``Get`` reads)."""
    if isinstance(value, dict) and set(value) == {"Get"}:
        return variables[value["Get"]]
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(_evaluate(v, variables)) for v in join["Values"])
    return value


def _problems(
    operation: str, arguments: dict[str, Any], *filled: str, service: str = "sagemaker"
) -> list[str]:
    return request_problems(operation, arguments, filled, service=service)


# ---------------------------------------------------------------------------------- the guide = the files
_REGION = re.compile(r"^[ \t]*# \[(START|END) (\w+)\]\n", re.MULTILINE)
_BLOCK = re.compile(
    r"(<!-- (?P<kind>example|error): (?P<file>[\w.]+)(?:#(?P<region>\w+))? -->\n```(?P<lang>\w+)\n)"
    r"(?P<body>.*?)(^```$)",
    re.MULTILINE | re.DOTALL,
)


def example_code(file_name: str, region: str | None) -> str:
    """A region of an example file (``# [START x]`` ... ``# [END x]``) dedented, or the whole file without the
    region markers."""
    text = (EXAMPLES / file_name).read_text()
    if region is None:
        return _REGION.sub("", text)
    match = re.search(
        rf"^[ \t]*# \[START {region}\]\n(?P<code>.*?)^[ \t]*# \[END {region}\]\n",
        text,
        re.MULTILINE | re.DOTALL,
    )
    if match is None:
        raise AssertionError(f"{file_name} has no region {region!r}")
    return textwrap.dedent(match.group("code"))


def synced_guide(text: str, errors: dict[str, str] | None = None) -> str:
    """The guide with every marked block replaced by what it shows: an example file's code, or (when ``errors``
    is given) the error a mistake file's compilation raises."""

    def replace(match: re.Match[str]) -> str:
        if match.group("kind") == "example":
            body = example_code(match.group("file"), match.group("region"))
        elif errors is not None:
            body = errors[match.group("file").removesuffix(".py")] + "\n"
        else:
            body = match.group("body")
        return f"{match.group(1)}{body}```"

    return _BLOCK.sub(replace, text)


def test_the_guide_shows_the_examples_as_they_are() -> None:
    text = GUIDE.read_text()
    assert synced_guide(text) == text, (
        "docs/escape-hatch.md differs from tests/fixtures/escape_hatch_examples: run "
        "`python tests/compiler/test_escape_hatch_examples.py --write`"
    )


def test_the_guide_shows_every_example() -> None:
    shown = {match.group("file") for match in _BLOCK.finditer(GUIDE.read_text())}
    files = {path.name for path in EXAMPLES.glob("*.py")}
    assert files - shown == set(), "examples the guide does not show"
    assert shown - files == set(), "the guide shows files that do not exist"
    # Every example that compiles is checked below; every mistake fails.
    assert set(STEPS) | set(MISTAKES) == {path.stem for path in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize("name", MISTAKES)
def test_the_guide_shows_each_mistakes_real_error(name: str) -> None:
    blocks = {
        match.group("file"): match.group("body")
        for match in _BLOCK.finditer(GUIDE.read_text())
        if match.group("kind") == "error"
    }
    assert blocks.get(f"{name}.py") == _mistake_message(name) + "\n"


# ------------------------------------------------------------------------------------- parsing stays cheap
PROBE = """
import sys
from airflow.dag_processing.dagbag import DagBag
for path in sys.argv[1:]:
    bag = DagBag(path)
    assert not bag.import_errors, bag.import_errors
    assert len(bag.dags) == 1, (path, list(bag.dags))
    heavy = sorted(m for m in sys.modules if m == "sagemaker" or m.startswith("sagemaker."))
    assert not heavy, f"parsing {path} imported {heavy[:3]}"
print("PARSED", len(sys.argv) - 1)
"""


def test_examples_parse_without_importing_the_sdk(tmp_path: Path) -> None:
    files = sorted(str(path) for path in EXAMPLES.glob("*.py"))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *files],
        capture_output=True,
        text=True,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"PARSED {len(files)}" in result.stdout


# ----------------------------------------------------------------------------------- every example compiles
@pytest.mark.parametrize("name", sorted(STEPS))
def test_example_compiles_to_its_step_type(name: str) -> None:
    step_name, step_type = STEPS[name]
    step = _step(name, step_name)
    assert step["Type"] == step_type
    assert step["Arguments"], "a step without arguments"


@pytest.mark.parametrize("name", MISTAKES)
def test_mistakes_fail_at_compile_time_naming_task_and_field(name: str) -> None:
    message = _mistake_message(name)
    assert re.match(r"task 'pipeline\.\w+' field '(step_factory|upstream_references)': ", message), message


# --------------------------------------------------------------------- step types without a native operator
def test_emr_step_on_an_existing_cluster() -> None:
    step = _step("emr")
    arguments = step["Arguments"]
    assert arguments["ClusterId"] == "j-1ABCDEFGHIJKL"
    assert arguments["StepConfig"]["HadoopJarStep"] == {
        "Jar": "command-runner.jar",
        "Args": ["spark-submit", f"s3://{BUCKET}/jobs/aggregate.py"],
    }
    assert (step["DisplayName"], step["Description"]) == (
        "Spark aggregation",
        "Aggregate the raw events on the team's EMR cluster",
    )
    # SageMaker sends StepConfig to EMR's AddJobFlowSteps, naming the EMR step itself.
    request = {
        "JobFlowId": arguments["ClusterId"],
        "Steps": [{**arguments["StepConfig"], "Name": "set-by-sm"}],
    }
    assert _problems("AddJobFlowSteps", request, service="emr") == []


def test_emr_serverless_step_on_an_application() -> None:
    arguments = _step("emr_serverless")["Arguments"]
    assert arguments["ApplicationId"] == "00fabcdefgh12345"
    job = arguments["JobConfig"]
    assert job["applicationId"] == "00fabcdefgh12345"
    assert arguments["ExecutionRoleArn"] == job["executionRoleArn"]
    assert job["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [
        "--date",
        {"Get": "Parameters.EventsDate"},
    ]
    assert _problems("StartJobRun", job, "clientToken", service="emr-serverless") == []


def test_quality_check_reads_the_processing_output() -> None:
    step = _step("quality_check")
    assert (step["CheckType"], step["SkipCheck"], step["RegisterNewBaseline"]) == ("DATA_QUALITY", True, True)
    assert step["DependsOn"] == ["prepare"]
    arguments = step["Arguments"]
    baseline = next(i for i in arguments["ProcessingInputs"] if i["InputName"] == "baseline_dataset_input")
    assert baseline["S3Input"]["S3Uri"] == {
        "Get": "Steps.prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    assert "sagemaker-model-monitor-analyzer" in arguments["AppSpecification"]["ImageUri"]
    assert _problems("CreateProcessingJob", arguments, "ProcessingJobName") == []


def test_clarify_check_uploads_its_analysis_configuration() -> None:
    step = _step("clarify_check")
    assert (step["CheckType"], step["SkipCheck"]) == ("DATA_BIAS", True)
    arguments = step["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in arguments["ProcessingInputs"]}
    assert inputs["dataset"] == {
        "Get": "Steps.prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    assert inputs["analysis_config"].startswith(
        f"s3://{BUCKET}/escape-hatch-clarify-check-pipeline/data-bias/"
    )
    assert _problems("CreateProcessingJob", arguments, "ProcessingJobName") == []


def test_automl_step_carries_the_create_automl_job_request() -> None:
    step = _step("automl")
    arguments = step["Arguments"]
    assert arguments["AutoMLJobConfig"]["Mode"] == "ENSEMBLING"
    source = arguments["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert source == {"Get": "Steps.prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert step["DependsOn"] == ["prepare"]
    assert _problems("CreateAutoMLJob", arguments, "AutoMLJobName") == []
    model = _step("automl", "best_model")
    assert model["DependsOn"] == ["automl"]
    assert model["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == {
        "Get": "Steps.automl.BestCandidate.InferenceContainers[0].ModelDataUrl"
    }


def test_sdk_automl_step_cannot_be_built() -> None:
    """Why the AutoML example writes its own Step: if this starts passing, the guide should use AutoMLStep."""
    from sagemaker.mlops.workflow.automl_step import AutoMLStep

    with pytest.raises(AttributeError, match="auto_ml"):
        AutoMLStep(name="automl", step_args=None)  # type: ignore[arg-type]


def test_notebook_job_runs_the_notebook_as_a_training_job() -> None:
    arguments = _step("notebook_job")["Arguments"]
    assert arguments["AlgorithmSpecification"]["ContainerEntrypoint"] == ["amazon_sagemaker_scheduler"]
    assert arguments["HyperParameters"] == {"report_date": {"Get": "Parameters.ReportDate"}}
    assert arguments["Environment"]["SM_INPUT_NOTEBOOK_NAME"] == "churn_report.ipynb"
    staged = arguments["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert staged.startswith(
        f"s3://{BUCKET}/notebook-jobs/escape-hatch-notebook-job-pipeline/churn_report/input-"
    )
    assert _problems("CreateTrainingJob", arguments) == []


def test_endpoint_config_and_endpoint_follow_the_model() -> None:
    config = _step("endpoint", "endpoint_config")
    assert config["Type"] == "EndpointConfig"
    assert config["DependsOn"] == ["model"]
    assert config["Arguments"]["ProductionVariants"][0]["ModelName"] == {"Get": "Steps.model.ModelName"}
    assert _problems("CreateEndpointConfig", config["Arguments"]) == []
    endpoint = _step("endpoint")
    assert endpoint["DependsOn"] == ["endpoint_config"]
    assert endpoint["Arguments"]["EndpointConfigName"] == {"Get": "Steps.endpoint_config.EndpointConfigName"}
    assert _problems("CreateEndpoint", endpoint["Arguments"]) == []


def test_inference_component_on_an_existing_endpoint() -> None:
    arguments = _step("inference_component")["Arguments"]
    assert arguments["Specification"]["ModelName"] == {"Get": "Steps.model.ModelName"}
    assert _problems("CreateInferenceComponent", arguments) == []


def test_job_step_sends_a_create_job_request_scoped_per_execution() -> None:
    arguments = _step("job")["Arguments"]
    assert "JobName" not in arguments  # SageMaker names the job
    assert (arguments["JobCategory"], arguments["JobConfigSchemaVersion"]) == ("AgentRFT", "1.0.0")
    document = json.loads(
        _evaluate(arguments["JobConfigDocument"], {"Execution.PipelineExecutionId": "abc123"})
    )
    assert document["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/agent-rft/output/abc123/"
    assert set(document) == {
        "AgentConfig",
        "InputDataConfig",
        "OutputDataConfig",
        "ModelPackageConfig",
        "TrainingConfig",
    }
    assert _problems("CreateJob", arguments, "JobName") == []


def test_lineage_step_records_entities_and_their_association() -> None:
    step = _step("lineage")
    arguments = step["Arguments"]
    (action,) = arguments["Actions"]
    (artifact,) = arguments["Artifacts"]
    assert action["Source"]["SourceUri"] == {"Get": "Steps.prepare.ProcessingJobArn"}
    assert artifact["Source"]["SourceUri"] == {
        "Get": "Steps.prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    assert arguments["Associations"] == [
        {
            "Source": {"Name": "churn-data-preparation", "Type": "Action"},
            "Destination": {"Name": "churn-training-data", "Type": "Artifact"},
            "AssociationType": "Produced",
        }
    ]
    assert _problems("CreateAction", action) == []
    assert _problems("CreateArtifact", artifact) == []


def test_cleanup_step_runs_after_the_steps_it_cleans_up_after() -> None:
    step = _step("cleanup")
    assert sorted(step["DependsOn"]) == ["prepare", "summarize"]
    (source,) = step["Arguments"]["Resources"]["S3"]
    assert source["StepName"] == "prepare"
    (uri,) = source["S3Uris"]
    assert _evaluate(
        uri, {"Steps.prepare.ProcessingOutputConfig.Outputs['scratch'].S3Output.S3Uri": "s3://b/x"}
    ) == ("s3://b/x/part-0.csv")


def test_for_each_runs_its_body_per_item() -> None:
    arguments = _step("for_each")["Arguments"]
    assert arguments["IterableItems"] == ["emea", "amer", "apac"]
    assert arguments["MaxConcurrency"] == 2
    (body,) = arguments["ForEachBody"]
    assert (body["Name"], body["Type"]) == ("score_regions-score", "Processing")
    assert body["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        "--region",
        {"Get": "ForEach.CurrentItem"},
    ]
    assert _problems("CreateProcessingJob", body["Arguments"], "ProcessingJobName") == []


def test_function_step_is_a_training_job_running_the_function() -> None:
    step = _step("function_step")
    arguments = step["Arguments"]
    assert step["DisplayName"] == "Count positives"
    assert arguments["AlgorithmSpecification"]["ContainerEntrypoint"] == [
        "/bin/bash",
        "/opt/ml/input/data/sagemaker_remote_function_bootstrap/job_driver.sh",
    ]
    container_arguments = arguments["AlgorithmSpecification"]["ContainerArguments"]
    assert "Parameters.Threshold" in container_arguments
    assert _problems("CreateTrainingJob", arguments, "TrainingJobName") == []


# ---------------------------------------------------------------- native kinds, written with the SDK instead
def test_sdk_processing_step_with_its_own_cache_and_retries() -> None:
    step = _step("sdk_processing")
    assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}
    assert step["RetryPolicies"][0]["ExceptionType"] == ["Step.THROTTLING"]
    arguments = step["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in arguments["ProcessingInputs"]}
    assert inputs["raw"] == {"Get": "Parameters.InputData"}
    # The code goes where the provider puts it: a content-addressed key of the group's bucket.
    assert re.fullmatch(
        rf"s3://{BUCKET}/escape-hatch-sdk-processing-pipeline/code/[0-9a-f]{{64}}/prepare\.py", inputs["code"]
    )
    assert _problems("CreateProcessingJob", arguments, "ProcessingJobName") == []


def test_sdk_training_step_between_native_steps() -> None:
    train = _step("sdk_training")
    assert train["DependsOn"] == ["prepare"]
    arguments = train["Arguments"]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in arguments["InputDataConfig"]
    }
    assert channels["train"] == {
        "Get": "Steps.prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    assert arguments["HyperParameters"] == {"max_depth": {"Get": "Parameters.MaxDepth"}}
    assert _problems("CreateTrainingJob", arguments, "TrainingJobName") == []
    model = _step("sdk_training", "model")
    assert model["DependsOn"] == ["train"]
    assert model["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == {
        "Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"
    }


def test_sdk_tuning_step() -> None:
    arguments = _step("sdk_tuning")["Arguments"]
    config = arguments["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 6}
    assert _problems("CreateHyperParameterTuningJob", arguments, "HyperParameterTuningJobName") == []


def test_sdk_transform_step() -> None:
    step = _step("sdk_transform")
    assert step["Arguments"]["ModelName"] == {"Get": "Steps.model.ModelName"}
    assert step["DependsOn"] == ["model"]
    assert _problems("CreateTransformJob", step["Arguments"], "TransformJobName") == []


def test_sdk_model_step() -> None:
    arguments = _step("sdk_model")["Arguments"]
    assert arguments["PrimaryContainer"]["ModelDataUrl"] == "s3://smpipe-examples/models/churn/model.tar.gz"
    assert _problems("CreateModel", arguments, "ModelName") == []


def test_sdk_register_model_step() -> None:
    arguments = _step("sdk_register_model")["Arguments"]
    assert arguments["ModelPackageGroupName"] == "churn-models"
    assert arguments["ModelApprovalStatus"] == {"Get": "Parameters.ApprovalStatus"}
    assert arguments["InferenceSpecification"]["Containers"][0]["Environment"] == {}
    assert _problems("CreateModelPackage", arguments) == []


def test_sdk_condition_step_with_its_branch_built_in_the_factory() -> None:
    step = _step("sdk_condition")
    assert step["DependsOn"] == ["evaluate"]
    (condition,) = step["Arguments"]["Conditions"]
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.evaluate.PropertyFiles.evaluation"},
            "Path": "metrics.auc.value",
        }
    }
    assert [s["Name"] for s in step["Arguments"]["ElseSteps"]] == ["quality_gate-too-weak"]


def test_sdk_fail_step() -> None:
    message = _step("sdk_fail")["Arguments"]["ErrorMessage"]
    variables = {"Execution.PipelineExecutionId": "abc123", "Parameters.Reason": "manual stop"}
    assert _evaluate(message, variables) == "abc123: manual stop"


def test_sdk_callback_step() -> None:
    step = _step("sdk_callback")
    assert step["SqsQueueUrl"].endswith("/labelling-requests")
    assert step["OutputParameters"] == [
        {"OutputName": "labelled_uri", "OutputType": "String"},
        {"OutputName": "rows", "OutputType": "Integer"},
    ]


def test_sdk_lambda_step_on_an_existing_function() -> None:
    step = _step("sdk_lambda")
    assert step["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:notify-team"
    assert step["Arguments"]["execution"] == {"Get": "Execution.PipelineExecutionArn"}
    assert step["OutputParameters"] == [{"OutputName": "message_id", "OutputType": "String"}]


def _write_guide() -> None:
    errors = {name: _mistake_message(name) for name in MISTAKES}
    GUIDE.write_text(synced_guide(GUIDE.read_text(), errors))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/compiler/test_escape_hatch_examples.py --write")
    _write_guide()
