"""The plain pipeline model -> SageMaker SDK 3.x objects -> the pipeline definition JSON.

The only module that imports the SageMaker SDK, inside functions: it runs in the launch task (and in the
``render`` command and tests), never at DAG parse time or in the triggerer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.compiler.context import CompileContext
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.references import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    ExecutionVariableRef,
    In,
    JoinRef,
    ModelArtifactsRef,
    Not,
    ParameterRef,
    PropertyFileRef,
    Reference,
    StepOutputRef,
    StepPropertyRef,
)
from airflow_provider_smpipe.model.spec import (
    ConditionStepSpec,
    CustomStepSpec,
    FailStepSpec,
    ParameterSpec,
    PipelineSpec,
    ProcessingStepSpec,
    RetrySpec,
    StepSpec,
    TrainingStepSpec,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import boto3

log = logging.getLogger(__name__)

# The SDK uploads training code under "<prefix>/<job name with a timestamp>/input/<channel>"; those keys are
# rewritten to content-addressed ones so the same code always gives the same definition.
_JOB_INPUT_KEY = re.compile(r"(?:^|/)input/(?P<channel>[^/]+)/?$")
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def tree_hash(path: str) -> str:
    """A sha256 over a file's or a directory's relative paths and contents."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [(os.path.basename(path), path)]
    else:
        files = []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                files.append((os.path.relpath(full, path), full))
    for relative, full in sorted(files):
        digest.update(relative.encode() + b"\0")
        with open(full, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def make_pipeline_session(boto_session: boto3.Session, default_bucket: str | None, pipeline_name: str) -> Any:
    """A ``PipelineSession`` whose uploads of job inputs go to content-addressed keys."""
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class ContentAddressedPipelineSession(PipelineSession):
        def upload_data(
            self,
            path: str,
            bucket: str | None = None,
            key_prefix: str = "data",
            callback: Any = None,
            extra_args: Any = None,
        ) -> str:
            match = _JOB_INPUT_KEY.search(key_prefix or "")
            if match:
                key_prefix = f"{pipeline_name}/code/{tree_hash(path)}/{match.group('channel')}"
            return str(super().upload_data(path, bucket, key_prefix, callback, extra_args))

    return ContentAddressedPipelineSession(
        boto_session=boto_session, default_bucket=default_bucket, sagemaker_config=_SDK_CONFIG
    )


@contextlib.contextmanager
def _sdk_environment(endpoint_url: str | None, region_name: str | None) -> Iterator[None]:
    """Environment for the SDK while it compiles.

    - ``SAGEMAKER_VALIDATE_ROLE=false``: SageMaker checks the role itself when the pipeline is created; the
      SDK's client-side check needs ``iam:SimulatePrincipalPolicy`` and several IAM calls per training step.
    - ``AWS_ENDPOINT_URL``: the SDK builds its own clients from the boto3 session, so the Airflow connection's
      ``endpoint_url`` (e.g. the local backend) reaches them only through botocore's environment setting.
    - ``AWS_DEFAULT_REGION``: importing ``sagemaker.mlops`` creates a boto3 client and fails without a region
      in the environment, even when the session has one (from the Airflow connection).
    """
    overrides = {"SAGEMAKER_VALIDATE_ROLE": "false"}
    if region_name:
        overrides["AWS_DEFAULT_REGION"] = region_name
    if endpoint_url:
        overrides["AWS_ENDPOINT_URL"] = endpoint_url
    previous = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    sdk_logger = logging.getLogger("sagemaker")
    level = sdk_logger.level
    sdk_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        sdk_logger.setLevel(level)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def compile_definition(
    spec: PipelineSpec, boto_session: boto3.Session, endpoint_url: str | None = None
) -> str:
    """Compile ``spec`` into the pipeline definition JSON, uploading step code to S3 as the SDK does.

    :param spec: The pipeline model.
    :param boto_session: The AWS session (credentials and region) the SDK uses.
    :param endpoint_url: An AWS-compatible endpoint to use instead of AWS (the connection's ``endpoint_url``).
    """
    with _sdk_environment(endpoint_url, boto_session.region_name):
        return _Builder(spec, boto_session).build().definition()


class _Builder:
    def __init__(self, spec: PipelineSpec, boto_session: boto3.Session) -> None:
        from sagemaker.core.workflow import parameters

        self.spec = spec
        self.session = make_pipeline_session(boto_session, spec.default_bucket, spec.name)
        self.bucket: str = self.session.default_bucket()
        self.steps_by_task: dict[str, Any] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        self.parameters = {p.name: self._parameter(p, parameters) for p in spec.parameters}
        self.names = {step.task_id: step.name for step in spec.steps}

    @staticmethod
    def _parameter(spec: ParameterSpec, parameters: Any) -> Any:
        cls = {
            "String": parameters.ParameterString,
            "Integer": parameters.ParameterInteger,
            "Float": parameters.ParameterFloat,
            "Boolean": parameters.ParameterBoolean,
        }[spec.type]
        kwargs: dict[str, Any] = {"name": spec.name}
        if spec.default is not None:
            kwargs["default_value"] = spec.default
        if spec.enum_values and spec.type == "String":
            kwargs["enum_values"] = list(spec.enum_values)
        return cls(**kwargs)

    # -- order: a step's SDK object must exist before anything refers to it ---------------------------------

    def _build_order(self) -> list[StepSpec]:
        by_name = {step.name: step for step in self.spec.steps}
        before: dict[str, set[str]] = {step.name: set(step.depends_on) for step in self.spec.steps}
        for step in self.spec.steps:
            for reference in _references_of(step):
                before[step.name].update(self.names[t] for t in reference.step_task_ids())
            if isinstance(step, ConditionStepSpec):
                # A condition step holds its branch steps, so they are built first.
                for target in (*step.if_steps, *step.else_steps):
                    before[step.name].add(self.names[target])
                    before[self.names[target]].discard(step.name)
        order: list[StepSpec] = []
        done: set[str] = set()
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise PipelineDefinitionError(f"pipeline {self.spec.name!r}: steps form a cycle at {name!r}")
            visiting.add(name)
            for dependency in sorted(before[name]):
                visit(dependency)
            visiting.discard(name)
            done.add(name)
            order.append(by_name[name])

        for step in self.spec.steps:
            visit(step.name)
        return order

    def build(self) -> Any:
        from sagemaker.mlops.workflow.pipeline import Pipeline

        branch_members: set[str] = set()
        for step in self._build_order():
            self.steps_by_task[step.task_id] = self._step(step)
            if isinstance(step, ConditionStepSpec):
                branch_members.update(step.if_steps, step.else_steps)
        top_level = [
            self.steps_by_task[s.task_id] for s in self.spec.steps if s.task_id not in branch_members
        ]
        return Pipeline(
            name=self.spec.name,
            parameters=list(self.parameters.values()),
            steps=top_level,
            sagemaker_session=self.session,
        )

    # -- values ------------------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """A model value as the SDK wants it: references become pipeline variables."""
        from sagemaker.core.workflow.execution_variables import ExecutionVariable
        from sagemaker.core.workflow.functions import Join, JsonGet

        if isinstance(value, ParameterRef):
            return self.parameters[value.name]
        if isinstance(value, ExecutionVariableRef):
            return ExecutionVariable(value.name)
        if isinstance(value, JoinRef):
            return Join(on=value.on, values=[self.resolve(v) for v in value.values])
        if isinstance(value, StepOutputRef):
            step = self.steps_by_task[value.task_id]
            return step.properties.ProcessingOutputConfig.Outputs[value.output_name].S3Output.S3Uri
        if isinstance(value, ModelArtifactsRef):
            return self.steps_by_task[value.task_id].properties.ModelArtifacts.S3ModelArtifacts
        if isinstance(value, PropertyFileRef):
            step = self.steps_by_task[value.task_id]
            return JsonGet(
                step_name=step.name,
                property_file=self.property_files[(value.task_id, value.file_name)],
                json_path=value.json_path,
            )
        if isinstance(value, StepPropertyRef):
            return _walk_properties(self.steps_by_task[value.task_id].properties, value.path, value)
        if isinstance(value, Reference):
            raise PipelineDefinitionError(f"unsupported reference {value!r}")
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.resolve(v) for v in value]
        return value

    def condition(self, condition: Condition, top_level: bool = False) -> list[Any]:
        from sagemaker.core.workflow import conditions as c

        if isinstance(condition, Comparison):
            cls = {
                "Equals": c.ConditionEquals,
                "GreaterThan": c.ConditionGreaterThan,
                "GreaterThanOrEqualTo": c.ConditionGreaterThanOrEqualTo,
                "LessThan": c.ConditionLessThan,
                "LessThanOrEqualTo": c.ConditionLessThanOrEqualTo,
            }[condition.type]
            return [cls(left=self.resolve(condition.left), right=self.resolve(condition.right))]
        if isinstance(condition, In):
            return [
                c.ConditionIn(value=self.resolve(condition.value), in_values=self.resolve(condition.choices))
            ]
        if isinstance(condition, Not):
            (inner,) = self.condition(condition.expression)
            return [c.ConditionNot(expression=inner)]
        if isinstance(condition, AnyOf):
            return [
                c.ConditionOr(conditions=[x for sub in condition.conditions for x in self.condition(sub)])
            ]
        if isinstance(condition, AllOf):
            if top_level:
                return [x for sub in condition.conditions for x in self.condition(sub)]
            # SageMaker has no nested "and": not(any(not a, not b)) says the same.
            negated = [
                c.ConditionNot(expression=x) for sub in condition.conditions for x in self.condition(sub)
            ]
            return [c.ConditionNot(expression=c.ConditionOr(conditions=negated))]
        raise PipelineDefinitionError(f"unsupported condition {condition!r}")

    # -- steps -------------------------------------------------------------------------------------------

    def _step(self, step: StepSpec) -> Any:
        if isinstance(step, ProcessingStepSpec):
            return self._processing(step)
        if isinstance(step, TrainingStepSpec):
            return self._training(step)
        if isinstance(step, ConditionStepSpec):
            return self._condition_step(step)
        if isinstance(step, FailStepSpec):
            from sagemaker.mlops.workflow.fail_step import FailStep

            return FailStep(
                name=step.name,
                error_message=self.resolve(step.error_message),
                depends_on=list(step.depends_on) or None,
            )
        if isinstance(step, CustomStepSpec):
            return self._custom(step)
        raise PipelineDefinitionError(f"step {step.name!r}: unsupported step type {type(step).__name__}")

    def _processing(self, step: ProcessingStepSpec) -> Any:
        from sagemaker.core.processing import Processor, ScriptProcessor
        from sagemaker.core.shapes import (
            ProcessingInput,
            ProcessingOutput,
            ProcessingS3Input,
            ProcessingS3Output,
        )
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join
        from sagemaker.core.workflow.properties import PropertyFile
        from sagemaker.mlops.workflow.steps import ProcessingStep

        common: dict[str, Any] = {
            "role": self.spec.role_arn,
            "image_uri": self.resolve(step.image_uri),
            "instance_type": self.resolve(step.instance_type),
            "instance_count": self.resolve(step.instance_count),
            "volume_size_in_gb": self.resolve(step.volume_size_in_gb),
            "max_runtime_in_seconds": self.resolve(step.max_runtime_in_seconds),
            "env": {k: self.resolve(v) for k, v in step.environment} or None,
            "sagemaker_session": self.session,
        }
        inputs = [
            ProcessingInput(
                input_name=item.name,
                s3_input=ProcessingS3Input(
                    s3_uri=self.resolve(item.source),
                    local_path=item.local_path,
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                ),
            )
            for item in step.inputs
        ]
        outputs = [
            ProcessingOutput(
                output_name=item.name,
                s3_output=ProcessingS3Output(
                    s3_uri=self.resolve(item.destination)
                    if item.destination is not None
                    else Join(
                        on="/",
                        values=[
                            "s3:/",
                            self.bucket,
                            self.spec.name,
                            ExecutionVariables.PIPELINE_EXECUTION_ID,
                            step.name,
                            item.name,
                        ],
                    ),
                    local_path=item.local_path,
                    s3_upload_mode="EndOfJob",
                ),
            )
            for item in step.outputs
        ]
        arguments = [self.resolve(a) for a in step.arguments] or None
        if step.code is not None:
            if not step.code.startswith("s3://") and not os.path.isfile(step.code):
                raise PipelineDefinitionError(
                    f"task {step.task_id!r} field 'code': script {step.code!r} does not exist"
                )
            processor = ScriptProcessor(command=list(step.command or ()), **common)
            step_args = processor.run(code=step.code, inputs=inputs, outputs=outputs, arguments=arguments)
        else:
            processor = Processor(entrypoint=[self.resolve(e) for e in step.entrypoint or ()], **common)
            step_args = processor.run(inputs=inputs, outputs=outputs, arguments=arguments)
        property_files = []
        for item in step.property_files:
            property_file = PropertyFile(name=item.name, output_name=item.output_name, path=item.path)
            self.property_files[(step.task_id, item.name)] = property_file
            property_files.append(property_file)
        return ProcessingStep(
            name=step.name,
            step_args=step_args,
            property_files=property_files or None,
            cache_config=self._cache(step),
            depends_on=list(step.depends_on) or None,
            retry_policies=self._retries(step.retry_policies),
        )

    def _training(self, step: TrainingStepSpec) -> Any:
        from sagemaker.core.shapes import CheckpointConfig, OutputDataConfig
        from sagemaker.mlops.workflow.steps import TrainingStep
        from sagemaker.train import ModelTrainer
        from sagemaker.train.configs import Compute, InputData, SourceCode, StoppingCondition

        script = os.path.join(step.source_dir or "", step.entry_point)
        if not os.path.isfile(script):
            raise PipelineDefinitionError(
                f"task {step.task_id!r} field 'entry_point': {script!r} does not exist"
            )
        if step.source_dir is None:
            # A lone script is uploaded alone (not its whole folder), from a directory of its own whose path
            # depends only on the script (the SDK writes the path into sm_drivers/sourcecode.json).
            source_dir = os.path.join(tempfile.gettempdir(), "smpipe-code", tree_hash(script))
            os.makedirs(source_dir, exist_ok=True)
            shutil.copy2(script, source_dir)
            source = SourceCode(source_dir=source_dir, entry_script=os.path.basename(script))
        else:
            source = SourceCode(source_dir=step.source_dir, entry_script=step.entry_point)
        stopping: dict[str, Any] = {}
        if step.max_runtime_in_seconds is not None:
            stopping["max_runtime_in_seconds"] = step.max_runtime_in_seconds
        if step.max_wait_in_seconds is not None:
            stopping["max_wait_time_in_seconds"] = step.max_wait_in_seconds
        compute: dict[str, Any] = {
            "instance_type": self.resolve(step.instance_type),
            "instance_count": step.instance_count,
            "volume_size_in_gb": step.volume_size_in_gb,
        }
        if step.use_spot_instances:
            compute["enable_managed_spot_training"] = True
        kwargs: dict[str, Any] = {
            "training_image": self.resolve(step.image_uri),
            "role": self.spec.role_arn,
            "sagemaker_session": self.session,
            "base_job_name": step.name,
            "source_code": source,
            "compute": Compute(**compute),
            "hyperparameters": {k: self.resolve(v) for k, v in step.hyperparameters},
            "environment": {k: self.resolve(v) for k, v in step.environment},
        }
        if stopping:
            kwargs["stopping_condition"] = StoppingCondition(**stopping)
        if step.output_path is not None:
            kwargs["output_data_config"] = OutputDataConfig(s3_output_path=self.resolve(step.output_path))
        if step.checkpoint_s3_uri is not None:
            kwargs["checkpoint_config"] = CheckpointConfig(s3_uri=self.resolve(step.checkpoint_s3_uri))
        trainer = ModelTrainer(**kwargs)
        channels = [InputData(channel_name=name, data_source=self.resolve(src)) for name, src in step.inputs]
        step_args = trainer.train(input_data_config=channels or None, wait=False)
        return TrainingStep(
            name=step.name,
            step_args=step_args,
            cache_config=self._cache(step),
            depends_on=list(step.depends_on) or None,
            retry_policies=self._retries(step.retry_policies),
        )

    def _condition_step(self, step: ConditionStepSpec) -> Any:
        from sagemaker.mlops.workflow.condition_step import ConditionStep

        assert step.condition is not None
        return ConditionStep(
            name=step.name,
            depends_on=list(step.depends_on) or None,
            conditions=self.condition(step.condition, top_level=True),
            if_steps=[self.steps_by_task[t] for t in step.if_steps],
            else_steps=[self.steps_by_task[t] for t in step.else_steps],
        )

    def _custom(self, step: CustomStepSpec) -> Any:
        assert step.factory is not None
        context = CompileContext(
            session=self.session,
            role_arn=self.spec.role_arn,
            default_bucket=self.bucket,
            pipeline_name=self.spec.name,
            step_name=step.name,
            _parameters=self.parameters,
            _steps=self.steps_by_task,
            _resolver=self.resolve,
        )
        built = step.factory(context)
        if getattr(built, "name", None) != step.name:
            raise PipelineDefinitionError(
                f"task {step.task_id!r} field 'step_factory': the factory returned "
                f"{type(built).__name__} named {getattr(built, 'name', None)!r}; name it ctx.step_name "
                f"({step.name!r})"
            )
        if step.depends_on:
            existing = [d if isinstance(d, str) else d.name for d in (built.depends_on or [])]
            built.depends_on = sorted(set(existing) | set(step.depends_on))
        return built

    @staticmethod
    def _cache(step: ProcessingStepSpec | TrainingStepSpec) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        if step.cache is None:
            return None
        return CacheConfig(enable_caching=True, expire_after=step.cache.expire_after)

    @staticmethod
    def _retries(specs: tuple[RetrySpec, ...]) -> list[Any] | None:
        from sagemaker.mlops.workflow.retry import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
            StepExceptionTypeEnum,
            StepRetryPolicy,
        )

        policies: list[Any] = []
        for spec in specs:
            common = {
                "backoff_rate": spec.backoff_rate,
                "interval_seconds": spec.interval_seconds,
                "max_attempts": spec.max_attempts,
                "expire_after_mins": spec.expire_after_mins,
            }
            if spec.kind == "step":
                # These SDK enums' metaclass maps any call to the default member: look members up by value.
                types = [_enum_member(StepExceptionTypeEnum, t) for t in spec.exception_types]
                policies.append(StepRetryPolicy(exception_types=types, **common))
            else:
                job_types = [_enum_member(SageMakerJobExceptionTypeEnum, t) for t in spec.exception_types]
                policies.append(SageMakerJobStepRetryPolicy(exception_types=job_types, **common))
        return policies or None


def _enum_member(enum: Any, value: str) -> Any:
    return next(member for member in enum if member.value == value)


def _references_of(step: StepSpec) -> Iterator[Reference]:
    from dataclasses import fields

    from airflow_provider_smpipe.model.references import iter_references

    for item in fields(step):
        for _, reference in iter_references(_plain(getattr(step, item.name))):
            yield reference


def _plain(value: Any) -> Any:
    """Nested spec dataclasses as tuples, so ``iter_references`` can walk them."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value) and not isinstance(value, type) and not isinstance(value, Reference | Condition):
        return tuple(_plain(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


_PATH_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


def _walk_properties(properties: Any, path: str, reference: StepPropertyRef) -> Any:
    """Follow ``"ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"`` through SDK properties."""
    current = properties
    position = 0
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if match is None:
            raise PipelineDefinitionError(
                f"{reference}: cannot parse the property path at {path[position:]!r}"
            )
        attribute, key, key2, index = match.groups()
        try:
            if attribute is not None:
                current = getattr(current, attribute)
            else:
                current = current[key if key is not None else key2 if key2 is not None else int(index)]
        except (AttributeError, KeyError, IndexError, TypeError):
            raise PipelineDefinitionError(
                f"{reference}: {path[: match.end()]!r} is not a property of that step"
            ) from None
        position = match.end()
    return current
