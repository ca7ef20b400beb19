"""Profile `single`: one record per request to POST /v1/predict."""

from locust import task

from harness.load.locustfiles.common import InferenceUser, RampHoldRampDown


class SingleRecordUser(InferenceUser):
    @task
    def predict_one(self) -> None:
        self.predict()


class SingleShape(RampHoldRampDown):
    pass
