"""Evaluation script for measuring the mean squared error, as in AWS's SageMaker Pipelines example.

Reads the model from /opt/ml/processing/model/model.tar.gz and the test split from /opt/ml/processing/test, and
writes the report AWS's example writes (``regression_metrics.mse.value``) to /opt/ml/processing/evaluation.
"""

import json
import pathlib
import tarfile

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error

if __name__ == "__main__":
    model_path = "/opt/ml/processing/model/model.tar.gz"
    with tarfile.open(model_path) as tar:
        tar.extractall(path=".")

    model = joblib.load("model.joblib")

    test_path = "/opt/ml/processing/test/test.csv"
    df = pd.read_csv(test_path, header=None)

    y_test = df.iloc[:, 0].to_numpy()
    df.drop(df.columns[0], axis=1, inplace=True)

    predictions = model.predict(df.values)

    mse = mean_squared_error(y_test, predictions)
    std = np.std(y_test - predictions)
    report_dict = {
        "regression_metrics": {
            "mse": {"value": mse, "standard_deviation": std},
        },
    }

    output_dir = "/opt/ml/processing/evaluation"
    pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)

    evaluation_path = f"{output_dir}/evaluation.json"
    with open(evaluation_path, "w") as f:
        f.write(json.dumps(report_dict))
    print(f"mse={mse:.4f} standard_deviation={std:.4f}", flush=True)
