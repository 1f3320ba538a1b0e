"""A SageMaker callback step as an Airflow task: the step waits for an answer, which the task can compute."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.output_parameters import (
    OutputParameterRef,
    check_output_reference,
    output_property_type,
    output_specs,
    output_value_text,
)
from airflow_provider_smpipe.model.steps.callback import CallbackStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smpipe.model.references import Operand

#: ``callback(inputs, token, context) -> {output name: value}``.
CallbackFunction = Callable[[dict[str, Any], str, Any], Mapping[str, Any] | None]


class SageMakerCallbackStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker callback step: SageMaker sends the step's inputs and a token to an SQS queue and waits until
    someone answers with ``SendPipelineExecutionStepSuccess`` (with output parameters) or
    ``SendPipelineExecutionStepFailure``.

    With ``callback``, this task does the work: when the step starts, the task continues on a worker, reads the
    step's message from the queue, calls ``callback(inputs, token, context)`` and sends success with the
    returned outputs, or failure with the exception's message; then it waits for the step to end like any step
    task. Without ``callback`` the task only follows the step, and an outside system answers.

    Later steps read an output with :meth:`output_parameter`, e.g. ``approval.output_parameter("approved_by")``
    (``approval.output`` keeps its Airflow meaning: the XComArg of the task's result).

    :param task_id: The task id; the step name is derived from it.
    :param sqs_queue_url: The SQS queue SageMaker sends the callback message to. Required (SageMaker requires
        it); the queue must exist, and SageMaker's execution role must be allowed to send to it. (templated)
    :param inputs: ``{name: value}`` sent as the message's ``arguments``; references to parameters and other
        steps' results are allowed. (templated)
    :param outputs: ``{name: "String" | "Integer" | "Float" | "Boolean"}`` of the output parameters the answer
        provides (a list of names declares String outputs). Names are 1-256 letters, digits, ``-`` or ``_``.
    :param callback: Optional callable run by this task when the step starts: it gets the step's input values
        (as SageMaker evaluated them), the callback token and the Airflow context, and returns a dict with a
        value for each declared output (converted to the declared type). An exception, or a value that is not
        of its declared type, answers failure with the message.
    :param message_wait_seconds: How long the task waits for the step's message to arrive in the queue before
        it answers failure.
    :param message_visibility_timeout: Seconds the step's message stays hidden from other receivers while the
        callable runs (a retry after a crash finds it again after that).
    """

    ui_color = "#e8dcf5"
    template_fields: Sequence[str] = ("sqs_queue_url", "inputs")
    template_fields_renderers = {"inputs": "json"}

    def __init__(
        self,
        *,
        sqs_queue_url: str | None = None,
        inputs: Mapping[str, Operand | Any] | None = None,
        outputs: Mapping[str, str | type] | Sequence[str] | None = None,
        callback: CallbackFunction | None = None,
        message_wait_seconds: float = 300.0,
        message_visibility_timeout: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"task {self.task_id!r}"
        if not isinstance(sqs_queue_url, str) or not sqs_queue_url.strip():
            raise PipelineDefinitionError(
                f"{where} field 'sqs_queue_url': SageMaker needs the URL of an SQS queue to send the callback "
                "message to, e.g. 'https://sqs.us-east-1.amazonaws.com/123456789012/my-queue'"
            )
        if "{{" not in sqs_queue_url and not sqs_queue_url.startswith(("https://", "http://")):
            raise PipelineDefinitionError(
                f"{where} field 'sqs_queue_url': {sqs_queue_url!r} is not a queue URL (https://sqs.<region>."
                "amazonaws.com/<account>/<queue>); give the URL, not the queue name"
            )
        if inputs is not None and not isinstance(inputs, Mapping):
            raise PipelineDefinitionError(
                f"{where} field 'inputs': expected a dict, got {type(inputs).__name__}"
            )
        for name in inputs or {}:
            if not isinstance(name, str) or not name:
                raise PipelineDefinitionError(f"{where} field 'inputs': {name!r} is not a usable name")
        if callback is not None and not callable(callback):
            raise PipelineDefinitionError(
                f"{where} field 'callback': expected a callable, got {type(callback).__name__}"
            )
        if message_wait_seconds < 0 or not 0 <= message_visibility_timeout <= 43200:
            raise PipelineDefinitionError(
                f"{where} field 'message_wait_seconds'/'message_visibility_timeout': expected a wait of at least "
                "0 seconds and a visibility timeout of 0 to 43200 seconds"
            )
        self.sqs_queue_url = sqs_queue_url
        self.inputs = dict(inputs or {})
        self.outputs = outputs
        self.output_types = output_specs(self.task_id, outputs)
        self.callback = callback
        self.message_wait_seconds = message_wait_seconds
        self.message_visibility_timeout = message_visibility_timeout
        # (callback token, execution ARN) while this task works on an answer (for on_kill).
        self._answering: tuple[str, str | None] | None = None

    # -- translation ------------------------------------------------------------------------------------

    def reference_fields(self) -> Mapping[str, Any]:
        return {"inputs": self.inputs}

    def property_type(self, path: str) -> str | None:
        """The type of a declared output (``Outputs['<name>']``), the only properties of this step kind."""
        return output_property_type(self.output_types, path)

    def output_parameter(self, name: str) -> OutputParameterRef:
        """The value the answer gives output ``name``, for later steps (typed as declared)."""
        check_output_reference(self.task_id, self.output_types, name)
        return OutputParameterRef.of(self.task_id, name)

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> CallbackStepSpec:
        url = self.sqs_queue_url
        # Rendered values are checked again (a template left as written is compiled as such by `render`).
        if not isinstance(url, str) or ("{{" not in url and not url.startswith(("https://", "http://"))):
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field 'sqs_queue_url': rendered to {url!r}, which is not an SQS queue URL"
            )
        return CallbackStepSpec(
            **self.common_spec_fields(name, depends_on),
            sqs_queue_url=self.sqs_queue_url,
            inputs=tuple(self.inputs.items()),
            outputs=self.output_types,
        )

    # -- run time -------------------------------------------------------------------------------------------

    def trigger_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The step trigger hands the task over to a worker when the step waits and there is a callable."""
        kwargs = super().trigger_kwargs(worker_handover=self.callback is not None)
        kwargs.update(overrides)
        return kwargs

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Answer the callback when the trigger handed the task over; otherwise end in the step's state."""
        if event and event.get("status") == "handover":
            self.answer_callback(context, event)
            return None
        result = super().execute_complete(context, event)
        return result

    def answer_callback(self, context: Context, event: Mapping[str, Any]) -> None:
        """Run the callable for the waiting step, send its answer, then wait for the step's end (defers)."""
        from airflow_provider_smpipe.hooks.callback import SageMakerCallbackHook
        from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger

        payload = event.get("handover") or {}
        token = str(payload.get("callback_token") or "")
        queue_url = str(payload.get("sqs_queue_url") or self.sqs_queue_url)
        execution_arn = event.get("execution_arn")
        if not token:
            raise AirflowException(f"step {self.step_name}: the hand-over event carries no callback token")
        group = self.pipeline_group
        hook = SageMakerCallbackHook(aws_conn_id=group.aws_conn_id, region_name=group.region_name)
        self._answering = (token, execution_arn)
        self._answer(context, hook, token, queue_url, stopping=payload.get("step_status") == "Stopping")
        self._answering = None
        ti = context["ti"]
        trigger = SageMakerPipelineStepTrigger(
            **self.trigger_kwargs(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                execution_arn=execution_arn,
                # A failure this task just answered must end the task, not retry the execution again.
                retry_failed_execution=False,
                worker_handover=False,
            )
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def _answer(self, context: Context, hook: Any, token: str, queue_url: str, *, stopping: bool) -> None:
        from airflow_provider_smpipe.hooks.callback import SageMakerCallbackQueueHook

        group = self.pipeline_group
        queue = SageMakerCallbackQueueHook(aws_conn_id=group.aws_conn_id, region_name=group.region_name)
        if not stopping:
            self.log.info("Waiting for the callback message of token %s in %s", token, queue_url)
        message = queue.find_callback_message(
            queue_url,
            token,
            # A stopping step is answered at once; its messages are removed if they are there already.
            wait_seconds=0 if stopping else self.message_wait_seconds,
            visibility_timeout=self.message_visibility_timeout,
        )
        if stopping or (message is not None and message.status == "Stopping"):
            self.log.info("Execution is stopping: answering callback token %s with a failure", token)
            hook.send_step_failure(token, "the pipeline execution is stopping")
        elif message is None:
            hook.send_step_failure(
                token,
                f"no callback message for token {token} arrived in {queue_url} within "
                f"{self.message_wait_seconds:.0f} s (is another consumer reading the queue?)",
            )
        elif self.callback is None:
            # The DAG changed since the trigger was created: an outside system answers.
            self.log.warning("No callback to run for token %s; leaving the answer to another system", token)
            return
        else:
            self.log.info("Running the callback with inputs %s", message.arguments)
            try:
                returned = self.callback(dict(message.arguments), token, context)
                outputs = self.typed_outputs(returned)
            except Exception as error:
                self.log.exception("The callback failed: answering failure")
                hook.send_step_failure(token, f"{type(error).__name__}: {error}")
            else:
                hook.send_step_success(token, outputs)
        if message is not None:
            queue.delete_messages(queue_url, message.receipt_handles)

    def on_kill(self) -> None:
        """A user killed the task while it worked on the callback: stop the execution, as killing any step task
        does, and answer the step with a failure (SageMaker keeps stopping until a callback step is answered)."""
        from airflow_provider_smpipe.hooks.callback import SageMakerCallbackHook

        answering = getattr(self, "_answering", None)
        if answering is None:
            return
        token, execution_arn = answering
        group = self.pipeline_group
        hook = SageMakerCallbackHook(aws_conn_id=group.aws_conn_id, region_name=group.region_name)
        if execution_arn:
            self.log.info("Task killed by a user: stopping execution %s", execution_arn)
            hook.stop_execution(execution_arn)
        hook.send_step_failure(token, "the Airflow task answering this callback was killed")

    def typed_outputs(self, returned: Mapping[str, Any] | None) -> dict[str, str]:
        """The callable's result as SageMaker output values: every declared output, typed as declared.

        :raises ValueError: for a missing or undeclared output, or a value not of its declared type.
        """
        if not isinstance(returned, Mapping | None):
            raise ValueError(f"the callback returned {type(returned).__name__}, expected a dict of outputs")
        values = dict(returned or {})
        declared = dict(self.output_types)
        missing = sorted(set(declared) - set(values))
        unknown = sorted(set(values) - set(declared))
        if missing or unknown:
            raise ValueError(
                f"the callback must return exactly the declared outputs {sorted(declared)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; not declared {unknown}" if unknown else "")
            )
        return {name: output_value_text(name, kind, values[name]) for name, kind in self.output_types}
