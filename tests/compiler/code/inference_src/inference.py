"""Inference handlers for a SageMaker framework container (model_fn / predict_fn)."""

from __future__ import annotations

import json
import os

from helpers.scoring import score


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as handle:
        return json.load(handle)


def predict_fn(data, model):
    return score(data, model)
