"""Lambda handler of the tuning example: decide the model package's approval status from its test MSE."""


def lambda_handler(event, context):
    mse = float(event["mse"])
    threshold = float(event["threshold"])
    status = "Approved" if mse <= threshold else "PendingManualApproval"
    print(f"test MSE {mse:.4f} against threshold {threshold}: {status}")
    return {"approval_status": status, "mse_margin": round(threshold - mse, 6)}
