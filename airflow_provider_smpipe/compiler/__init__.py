"""From Airflow tasks to a SageMaker pipeline definition.

``from_airflow`` turns a closed group (templates rendered) into the plain :class:`PipelineSpec`; ``sdk`` turns
that into SageMaker SDK objects and the definition JSON. Only ``sdk`` imports the SageMaker SDK, and only when
called.
"""
