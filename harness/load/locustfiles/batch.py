"""Profile `batch`: `batch_size` records per request to POST /v1/predict/batch."""

from locust import task

from harness.load.locustfiles.common import InferenceUser, RampHoldRampDown


class BatchUser(InferenceUser):
    @task
    def predict_many(self) -> None:
        self.predict_batch()


class BatchShape(RampHoldRampDown):
    pass
