"""The plain model of a training step, and the argument class of its channels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

TRAINING_INPUT_MODES = ("File", "Pipe", "FastFile")
TRAINING_DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
TRAINING_COMPRESSIONS = ("None", "Gzip")
#: SageMaker's own ``StoppingCondition.MaxRuntimeInSeconds`` when none is given: one day.
DEFAULT_MAX_RUNTIME_IN_SECONDS = 86400
#: Channel names the SageMaker SDK's ``ModelTrainer`` uses for the script and its drivers.
RESERVED_CHANNELS = frozenset({"code", "sm_drivers"})


class TrainingInput(NamedTuple):
    """One channel of a training step with its options (``inputs={"train": TrainingInput(...)}``).

    A tuple, so Airflow renders the templates inside it like any other collection.

    :param source: An S3 URI, a parameter or another step's output. (templated)
    :param content_type: The MIME type of the data, e.g. ``"text/csv"`` (built-in algorithms read it).
    :param input_mode: ``"File"``, ``"Pipe"`` or ``"FastFile"``.
    :param distribution: ``"FullyReplicated"`` or ``"ShardedByS3Key"`` (each instance gets a share of the
        objects).
    :param compression: ``"None"`` or ``"Gzip"`` (Pipe mode only, as in SageMaker).
    """

    source: Operand
    content_type: str | None = None
    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    compression: str | None = None


@dataclass(frozen=True)
class TrainingChannelSpec:
    name: str
    source: Operand
    content_type: str | None = None
    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    compression: str | None = None

    @property
    def plain(self) -> bool:
        """Whether the channel has only the SDK's defaults (rendered like a bare source)."""
        return (
            self.content_type is None
            and self.input_mode == "File"
            and self.distribution == "FullyReplicated"
            and self.compression is None
        )


@dataclass(frozen=True)
class TrainingStepSpec(StepSpec):
    """A training job; without ``entry_point`` the image's own entrypoint runs (a built-in algorithm)."""

    step_type: ClassVar[str] = "Training"

    image_uri: Operand = ""
    entry_point: str | None = None
    source_dir: str | None = None
    hyperparameters: tuple[tuple[str, Operand], ...] = ()
    inputs: tuple[TrainingChannelSpec, ...] = ()
    instance_type: Operand = "ml.m5.large"
    instance_count: int = 1
    volume_size_in_gb: int = 30
    #: None: SageMaker's default (:data:`DEFAULT_MAX_RUNTIME_IN_SECONDS`, capped by ``max_wait_in_seconds``).
    max_runtime_in_seconds: int | None = None
    environment: tuple[tuple[str, Operand], ...] = ()
    output_path: Operand | None = None
    use_spot_instances: bool = False
    max_wait_in_seconds: int | None = None
    checkpoint_s3_uri: Operand | None = None
    checkpoint_local_path: str | None = None
    keep_alive_period_in_seconds: int | None = None
