"""Serving code of the abalone model: the SageMaker scikit-learn container's handler functions.

Used by the batch transform (and by an endpoint, unchanged): CSV rows in, one predicted ring count per row out.
"""

import io
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, request_content_type):
    if request_content_type != "text/csv":
        raise ValueError(f"unsupported content type {request_content_type}")
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def predict_fn(input_data, model):
    return model.predict(input_data)


def output_fn(prediction, accept):
    return "\n".join(f"{value:.4f}" for value in prediction) + "\n"
