"""The inference API image against the S3-compatible registry: predictions over HTTP, a hot swap with
no failed request while a client keeps calling, and a corrupted version refused while the last good
one keeps serving."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from apps.inference import ModelRegistry, synthetic_dataset, train
from apps.inference.registry import ACTIVE_FILE, ONNX_FILE, ActivePointer
from apps.waiting import wait_for
from environments import load_environment
from environments.model import feature_names
from harness.containers.runners import Running
from harness.containers.services import S3Service

pytestmark = pytest.mark.e2e
# The container runs as local's Deployment, whose ConfigMap pins its family's contract (seed 001's
# 20 features): models of another schema are refused, so these are trained on it.
API_FEATURES = feature_names(load_environment("local").apps.inference_api.features) or []
DATA = synthetic_dataset(n_samples=600, n_features=len(API_FEATURES), seed=3)
RELOAD_S = "0.5"


@pytest.fixture
def registry(mlops_bucket: str, mlops_s3: S3Service, mlops_s3_host_env: dict[str, str]) -> ModelRegistry:
    return ModelRegistry(f"{mlops_bucket}/registry", endpoint_url=mlops_s3.endpoint_url)


class Caller:
    """A client that keeps calling /v1/predict from a thread; bounded in count and time."""

    def __init__(self, url: str, features: list[float], *, max_requests: int = 20_000, max_s: float = 180) -> None:
        self.url, self.features = url, features
        self.max_requests, self.max_s = max_requests, max_s
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()

    def seen(self, version: str) -> bool:
        return self.versions[version] > 0

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_s
        with httpx.Client(timeout=10) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    r = client.post(self.url + "/v1/predict", json={"features": self.features})
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")
                    continue
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code}: {r.text[:200]}")
                else:
                    self.versions[r.json()["model_version"]] += 1

    @contextmanager
    def running(self) -> Iterator[Caller]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=30)


def _start(mlops_inference_api, registry: ModelRegistry) -> Running:
    return mlops_inference_api(MODEL_REGISTRY_URI=registry.uri, RELOAD_INTERVAL_S=RELOAD_S, LOG_LEVEL="INFO")


def test_api_predicts_and_switches_to_a_promoted_version_with_no_failed_request(
    mlops_inference_api, registry: ModelRegistry
) -> None:
    v1 = registry.publish(train(DATA, seed=1))
    registry.promote(v1)
    api = _start(mlops_inference_api, registry)
    x = DATA.X[0].tolist()

    legacy = httpx.post(api.url + "/predict-single", json={"features": x}, timeout=10)
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["model_version"] == v1 and legacy.json()["prediction"] in DATA.schema.classes
    current = httpx.post(api.url + "/v1/predict", json={"features": x}, timeout=10)
    assert current.status_code == 200, current.text
    body = current.json()
    assert body["label"] in DATA.schema.classes and abs(sum(body["probabilities"]) - 1) < 1e-4

    v2 = registry.publish(train(DATA, classifier="logistic_regression", seed=2))
    with Caller(api.url, x).running() as caller:
        wait_for(lambda: caller.seen(v1), what="the client to get answers from v1", timeout=60)
        registry.promote(v2)
        wait_for(lambda: caller.seen(v2), what=f"the API to serve {v2} after its promotion", timeout=60,
                 describe=lambda: f"answers so far: {dict(caller.versions)}; failures: {caller.failures[:5]}")
    assert caller.failures == []
    info = httpx.get(api.url + "/v1/model", timeout=10).json()
    assert info["version"] == v2 and info["classifier"] == "logistic_regression"


def test_a_corrupted_version_is_refused_and_the_last_good_one_keeps_serving(
    mlops_inference_api, registry: ModelRegistry
) -> None:
    good = registry.publish(train(DATA, seed=1))
    registry.promote(good)
    api = _start(mlops_inference_api, registry)

    bad = registry.publish(train(DATA, seed=5))
    key = f"versions/{bad}/{ONNX_FILE}"
    registry.store.put_bytes(key, registry.store.get_bytes(key)[:-64] + b"\0" * 64)  # bytes rotted in the store
    # The pointer flipped by hand (promote() itself would refuse to activate a corrupt version).
    pointer = ActivePointer(version=bad, history=[good], updated_at=datetime.now(UTC))
    registry.store.put_bytes(ACTIVE_FILE, pointer.model_dump_json().encode())

    def refused() -> dict | None:
        info = httpx.get(api.url + "/v1/model", timeout=10).json()
        error = info.get("last_reload_error")
        return info if error and error["version"] == bad else None

    info = wait_for(refused, what=f"the API to refuse {bad}", timeout=60, transient=(httpx.HTTPError,))
    assert info["version"] == good
    answer = httpx.post(api.url + "/v1/predict", json={"features": DATA.X[1].tolist()}, timeout=10)
    assert answer.status_code == 200 and answer.json()["model_version"] == good
    assert httpx.get(api.url + "/readyz", timeout=10).status_code == 200
