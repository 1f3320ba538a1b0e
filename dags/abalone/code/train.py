"""Train a gradient-boosted regressor on the abalone features (SageMaker script mode).

The training and validation channels hold headerless CSVs with the label in the first column. The validation
RMSE is printed as ``validation:rmse=<value>``, which the tuning step's objective metric regex reads.
"""

import argparse
import glob
import os

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_squared_error


def read_channel(name):
    directory = os.environ[f"SM_CHANNEL_{name.upper()}"]
    frames = [pd.read_csv(path, header=None) for path in sorted(glob.glob(f"{directory}/*.csv"))]
    data = pd.concat(frames)
    return data.iloc[:, 1:].to_numpy(), data.iloc[:, 0].to_numpy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_estimators", type=int, default=100)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--subsample", type=float, default=1.0)
    args, _ = parser.parse_known_args()

    X_train, y_train = read_channel("train")
    X_validation, y_validation = read_channel("validation")
    print(f"training on {len(y_train)} rows with {vars(args)}", flush=True)
    model = GradientBoostingRegressor(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        subsample=args.subsample,
        random_state=0,
    )
    model.fit(X_train, y_train)
    rmse = float(np.sqrt(mean_squared_error(y_validation, model.predict(X_validation))))
    print(f"validation:rmse={rmse:.6f}", flush=True)
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
