"""Profile `scale`: single-record predictions held long enough for the HPA to scale the API out."""

from locust import task

from harness.load.locustfiles.common import InferenceUser, RampHoldRampDown


class ScalingUser(InferenceUser):
    @task
    def predict_one(self) -> None:
        self.predict()


class ScaleShape(RampHoldRampDown):
    pass
