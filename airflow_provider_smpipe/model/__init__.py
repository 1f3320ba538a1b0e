"""The plain model between Airflow tasks and the SageMaker pipeline definition (no Airflow, no SDK)."""
