"""The local demo: a complete Airflow stack on the local SageMaker backend (``make demo``, ``make up``).

:mod:`airflow_provider_smpipe.demo.stack` is the reusable harness (the end-to-end tests use it);
``python -m airflow_provider_smpipe.demo run|up|down`` is the command line.
"""

from __future__ import annotations
