"""Profile `mixed`: mostly single records, some batches, and clients reading the active model."""

from locust import task

from harness.load.locustfiles.common import InferenceUser, RampHoldRampDown


class MixedUser(InferenceUser):
    # Online traffic dominates; batch callers and model-info readers are the minority.
    @task(7)
    def predict_one(self) -> None:
        self.predict()

    @task(2)
    def predict_many(self) -> None:
        self.predict_batch()

    @task(1)
    def model_info(self) -> None:
        self.read_model()


class MixedShape(RampHoldRampDown):
    pass
