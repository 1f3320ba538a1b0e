"""The serving side of local batch transform jobs.

SageMaker runs a transform job as a model container serving ``/invocations`` plus a batch agent that splits the
input objects into records, batches them into requests, joins and filters the results and writes
``<object>.out``. Locally both run as one process inside the job's mount namespace
(``python -m airflow_provider_smpipe.local.serving <config>``):

- :mod:`.handlers` loads the model's inference script the way SageMaker's framework containers do
  (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` or ``transform_fn``, with the inference toolkit's
  defaults), or talks HTTP to a local command mapped to the model's image;
- :mod:`.records` is the batch agent (split, batch, join, filter, assemble);
- :mod:`.jsonpath` is the JSONPath subset SageMaker documents for ``InputFilter``/``OutputFilter``;
- :mod:`.compat` stands in for ``sagemaker_containers``/``sagemaker_inference`` helpers scripts import.

Nothing here imports Airflow, boto3 or the SageMaker SDK: it starts fast in every job.
"""
