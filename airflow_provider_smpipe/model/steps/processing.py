"""The plain model of a processing step, and the argument classes its operator takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

PROCESSING_ROOT = "/opt/ml/processing"
PROCESSING_INPUT_ROOT = "/opt/ml/processing/input"
PROCESSING_OUTPUT_ROOT = "/opt/ml/processing/output"
#: Where the SDK's ``ScriptProcessor`` puts ``code``, as an input of its own named ``code``.
PROCESSING_CODE_INPUT = "code"
PROCESSING_CODE_PATH = "/opt/ml/processing/input/code"
PROCESSING_INPUT_MODES = ("File", "Pipe")
PROCESSING_DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
PROCESSING_UPLOAD_MODES = ("EndOfJob", "Continuous")


class ProcessingInput(NamedTuple):
    """One input of a processing step, when a plain source is not enough (``inputs={"raw": ProcessingInput(...)}``).

    A tuple, so Airflow renders the templates inside it like any other collection.

    :param source: An S3 URI, a parameter or another step's output. (templated)
    :param destination: The container path the data is downloaded to, under ``/opt/ml/processing/``
        (default ``/opt/ml/processing/input/<name>``). (templated)
    :param mode: ``"File"`` (downloaded before the script starts) or ``"Pipe"`` (streamed).
    :param distribution: ``"FullyReplicated"`` (every instance gets everything) or ``"ShardedByS3Key"`` (each
        instance gets a share of the objects).
    """

    source: Operand
    destination: str | None = None
    mode: str = "File"
    distribution: str = "FullyReplicated"


class ProcessingOutput(NamedTuple):
    """One output of a processing step, when a plain destination is not enough
    (``outputs={"train": ProcessingOutput(source="/opt/ml/processing/train")}``).

    :param destination: Where the output goes in S3: a URI, a parameter or a join; default
        ``s3://<default bucket>/<pipeline>/<execution id>/<step>/<name>``. (templated)
    :param source: The container directory uploaded, under ``/opt/ml/processing/`` (default
        ``/opt/ml/processing/output/<name>``). (templated)
    :param upload_mode: ``"EndOfJob"`` or ``"Continuous"`` (uploaded while the job runs).
    """

    destination: Operand | None = None
    source: str | None = None
    upload_mode: str = "EndOfJob"


@dataclass(frozen=True)
class ProcessingInputSpec:
    name: str
    source: Operand
    local_path: str
    s3_input_mode: str = "File"
    s3_data_distribution_type: str | None = None


@dataclass(frozen=True)
class ProcessingOutputSpec:
    name: str
    destination: Operand | None
    local_path: str
    s3_upload_mode: str = "EndOfJob"


@dataclass(frozen=True)
class PropertyFileSpec:
    name: str
    output_name: str
    path: str


@dataclass(frozen=True)
class ProcessingStepSpec(StepSpec):
    step_type: ClassVar[str] = "Processing"

    image_uri: Operand = ""
    code: str | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[Operand, ...] | None = None
    arguments: tuple[Operand, ...] = ()
    inputs: tuple[ProcessingInputSpec, ...] = ()
    outputs: tuple[ProcessingOutputSpec, ...] = ()
    property_files: tuple[PropertyFileSpec, ...] = ()
    instance_type: Operand = "ml.m5.large"
    instance_count: Operand = 1
    volume_size_in_gb: Operand = 30
    max_runtime_in_seconds: Operand | None = None
    environment: tuple[tuple[str, Operand], ...] = ()
