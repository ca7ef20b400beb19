"""The inference API in-process (httpx ASGI client): every route, every bad input, hot reload."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from apps.api import workload
from apps.api.app import create_app
from apps.api.settings import Settings, SettingsError
from apps.inference import ModelRegistry, synthetic_dataset, train
from environments import load_environment

pytestmark = pytest.mark.anyio

SEED_BODY = {"features": list(range(1, 21))}  # the inference seed's curl example


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def forest():
    return train(synthetic_dataset(n_samples=600, n_features=20, seed=1), classifier="random_forest", seed=0)


@pytest.fixture(scope="module")
def logistic():
    return train(synthetic_dataset(n_samples=600, n_features=20, seed=1), classifier="logistic_regression", seed=0)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(f"file://{tmp_path}/models")


def deployed_environ(registry: ModelRegistry, **env: str) -> dict[str, str]:
    """What the `local` Deployment's ConfigMap gives the API, with a test registry and `env` on top."""
    return {**workload.config(load_environment("local")), "MODEL_REGISTRY_URI": registry.uri, **env}


def settings_for(registry: ModelRegistry, **env: str) -> Settings:
    return Settings.from_environ(deployed_environ(registry, **env))


class Api:
    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client

    @property
    def state(self) -> Any:
        return self.app.state.model

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = (await self.client.get("/metrics")).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


async def _started(settings: Settings, *, raise_app_exceptions: bool = True) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(app, client)


@pytest.fixture
async def api(registry: ModelRegistry, forest) -> AsyncIterator[Api]:
    registry.promote(registry.publish(forest))
    async for started in _started(settings_for(registry, BATCH_LIMIT="8")):
        yield started


# ------------------------------------------------------------------ routes


async def test_prediction_routes_agree_with_the_model(api: Api, forest) -> None:
    version = api.state.current.version
    expected = forest.estimator.predict_proba(np.array([SEED_BODY["features"]], dtype=np.float32))[0]
    legacy = (await api.client.post("/predict-single", json=SEED_BODY)).json()
    single = (await api.client.post("/v1/predict", json=SEED_BODY)).json()
    assert legacy["prediction"] == single["label"] == int(expected.argmax())
    assert legacy["model_version"] == single["model_version"] == version
    np.testing.assert_allclose(single["probabilities"], expected, atol=1e-5)

    rows = synthetic_dataset(n_samples=8, n_features=20, seed=5).X.tolist()
    batch = await api.client.post("/v1/predict/batch", json={"instances": rows})
    assert batch.status_code == 200
    expected_rows = forest.estimator.predict_proba(np.array(rows, dtype=np.float32))
    np.testing.assert_allclose(batch.json()["probabilities"], expected_rows, atol=1e-5)
    assert len(batch.json()["labels"]) == 8 and batch.json()["model_version"] == version


async def test_a_big_batch_answers_what_the_model_itself_predicts(registry: ModelRegistry, forest) -> None:
    registry.promote(registry.publish(forest))
    async for api in _started(settings_for(registry)):
        rows = synthetic_dataset(n_samples=200, n_features=20, seed=6).X
        body = (await api.client.post("/v1/predict/batch", json={"instances": rows.tolist()})).json()
        np.testing.assert_allclose(body["probabilities"], forest.estimator.predict_proba(rows), atol=1e-5)


async def test_declared_routes_answer_like_the_fast_path(api: Api) -> None:
    """The FastAPI routes (what OpenAPI documents) and the fast path share one core: same answers."""
    from fastapi import FastAPI

    from apps.api.routes import router

    plain = FastAPI()
    plain.include_router(router)
    plain.state.settings, plain.state.metrics, plain.state.model = (
        api.app.state.settings, api.app.state.metrics, api.app.state.model)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://plain") as client:
        for route, body in [("/v1/predict", SEED_BODY), ("/predict-single", SEED_BODY),
                            ("/v1/predict/batch", {"instances": [SEED_BODY["features"]] * 3}),
                            ("/v1/predict", {"features": [1, 2]})]:
            slow, fast = await client.post(route, json=body), await api.client.post(route, json=body)
            assert (slow.status_code, slow.json()) == (fast.status_code, fast.json())


async def test_health_model_and_metrics_routes(api: Api) -> None:
    version = api.state.current.version
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/health")).json() == {"status": "healthy", "model_loaded": True,
                                                        "model_version": version}
    ready = await api.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "model_version": version})
    info = (await api.client.get("/v1/model")).json()
    assert (info["version"], info["backend"], info["device"], info["classifier"]) == (
        version, "onnxruntime", "cpu", "random_forest")
    assert info["features"] == [f"f{i}" for i in range(20)] and info["classes"] == [0, 1]
    assert set(info["metrics"]) >= {"accuracy", "roc_auc", "f1"} and info["batch_limit"] == 8
    assert info["last_reload_error"] is None

    for _ in range(3):
        await api.client.post("/v1/predict", json=SEED_BODY)
    await api.client.post("/v1/predict", json={"features": [1]})
    m = await api.metrics()
    ok = ("inference_requests_total", (("method", "POST"), ("route", "/v1/predict"), ("status", "200")))
    assert m[ok] == 3
    assert m[("inference_requests_total", (("method", "POST"), ("route", "/v1/predict"), ("status", "422")))] == 1
    assert m[("inference_errors_total", (("kind", "validation"), ("route", "/v1/predict")))] == 1
    assert m[("inference_request_duration_seconds_count", (("route", "/v1/predict"),))] == 4
    assert m[("inference_model_info", (("backend", "onnxruntime"), ("device", "cpu"), ("version", version)))] == 1
    assert m[("inference_predicted_records_total", ())] == 3
    assert (await api.client.get("/openapi.json")).json()["paths"]["/v1/predict/batch"]["post"]["requestBody"]


async def test_not_ready_until_a_model_is_promoted(registry: ModelRegistry, forest) -> None:
    async for api in _started(settings_for(registry)):
        assert (await api.client.get("/healthz")).status_code == 200
        assert (await api.client.get("/health")).json()["model_loaded"] is False
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
        # The reason says what it waits for, on both routes an operator reads.
        assert "no model version promoted yet" in ready.json()["reason"] and "bootstrap Job" in ready.json()["reason"]
        assert "no model version promoted yet" in (await api.client.get("/v1/model")).json()["detail"]
        for route in ("/v1/predict", "/predict-single"):
            response = await api.client.post(route, json=SEED_BODY)
            assert response.status_code == 503 and "no verified model" in response.json()["detail"]
        assert (await api.client.get("/v1/model")).status_code == 503
        registry.promote(registry.publish(forest))
        assert await api.state.refresh()
        assert (await api.client.get("/readyz")).status_code == 200
        assert (await api.client.post("/v1/predict", json=SEED_BODY)).status_code == 200


async def test_an_internal_failure_is_a_counted_json_500(registry: ModelRegistry, forest) -> None:
    class Broken:
        backend, device = "onnxruntime", "cpu"
        providers: list[str] = []

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            raise RuntimeError("session lost")

    registry.promote(registry.publish(forest))
    async for api in _started(settings_for(registry), raise_app_exceptions=False):
        api.state.current = dataclasses.replace(api.state.current, predictor=Broken())
        with capture_logs() as logs:
            response = await api.client.post("/v1/predict", json=SEED_BODY)
        assert response.status_code == 500 and response.json() == {"detail": "internal error; see the server log"}
        assert any(e["event"] == "request_failed" and "session lost" in e["error"] for e in logs)
        m = await api.metrics()
        assert m[("inference_errors_total", (("kind", "internal"), ("route", "/v1/predict")))] == 1
        assert m[("inference_requests_total", (("method", "POST"), ("route", "/v1/predict"), ("status", "500")))] == 1


# ------------------------------------------------------------------ bad input


BAD_SINGLE = [
    (json.dumps({"features": list(range(19))}), ["body", "features"], "expected 20 features"),
    (json.dumps({"features": list(range(21))}), ["body", "features"], "got 21"),
    ('{"features": [1, 2, 3, NaN' + ", 1" * 16 + "]}", ["body", "features", 3], "finite number"),
    ('{"features": [Infinity' + ", 1" * 19 + "]}", ["body", "features", 0], "finite number"),
    (json.dumps({"features": ["a"] + [1] * 19}), ["body", "features", 0], "valid number"),
    (json.dumps({"features": [True] + [1] * 19}), ["body", "features", 0], "valid number"),
    (json.dumps({"features": [None] + [1] * 19}), ["body", "features", 0], "valid number"),
    (json.dumps({"features": 5}), ["body", "features"], "valid array"),
    (json.dumps({"features": []}), ["body", "features"], "at least 1 item"),
    (json.dumps({"inputs": [1] * 20}), ["body", "features"], "Field required"),
    (json.dumps({"features": [1] * 20, "extra": 1}), ["body", "extra"], "Extra inputs"),
    ("{not json", ["body"], "Invalid JSON"),
    ("", ["body"], "Invalid JSON"),
]


@pytest.mark.parametrize("route", ["/v1/predict", "/predict-single"])
@pytest.mark.parametrize(("body", "loc", "message"), BAD_SINGLE)
async def test_bad_single_records_are_422_naming_the_field(api: Api, route: str, body: str, loc: list, message: str) -> None:
    response = await api.client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert any(d["loc"] == loc and message in d["msg"] for d in details), details


BAD_BATCH = [
    ({"instances": [[1.0] * 20] * 9}, ["body", "instances"], "expected at most 8 records (BATCH_LIMIT), got 9"),
    ({"instances": [[1.0] * 20, [1.0] * 20, [1.0] * 19]}, ["body", "instances", 2], "expected 20 features"),
    ({"instances": [[1.0] * 20, ["x"] + [1.0] * 19]}, ["body", "instances", 1, 0], "valid number"),
    ({"instances": []}, ["body", "instances"], "at least 1 item"),
    ({"instances": [1.0] * 20}, ["body", "instances", 0], "valid array"),
    ({"features": [1.0] * 20}, ["body", "instances"], "Field required"),
]


@pytest.mark.parametrize(("body", "loc", "message"), BAD_BATCH)
async def test_bad_batches_are_422_naming_the_field(api: Api, body: dict, loc: list, message: str) -> None:
    response = await api.client.post("/v1/predict/batch", json=body)
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert any(d["loc"] == loc and message in d["msg"] for d in details), details


async def test_nan_inside_a_batch_is_refused(api: Api) -> None:
    body = '{"instances": [[' + ", ".join(["1"] * 19) + ", NaN]]}"
    response = await api.client.post("/v1/predict/batch", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "instances", 0, 19]


async def test_openapi_states_the_sizes_the_server_enforces(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()

    def body(path: str) -> dict:
        return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]

    for path in ("/v1/predict", "/predict-single"):
        assert (body(path)["features"]["minItems"], body(path)["features"]["maxItems"]) == (20, 20)
        assert {"413", "415", "422", "503"} <= set(doc["paths"][path]["post"]["responses"])
    instances = body("/v1/predict/batch")["instances"]
    assert instances["maxItems"] == 8 and instances["items"]["maxItems"] == 20
    [metrics_type] = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics_type.startswith("text/plain; version=")  # Prometheus text exposition


@pytest.mark.parametrize("value", [1e39, -1e39, 1e308])
async def test_values_beyond_float32_are_refused_not_turned_into_infinity(api: Api, value: float) -> None:
    response = await api.client.post("/v1/predict", json={"features": [value] + [1.0] * 19})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "features", 0]


async def test_bodies_that_are_not_json_or_too_large_are_refused_before_the_route(api: Api) -> None:
    text = await api.client.post("/v1/predict", content=b"1,2,3", headers={"content-type": "text/plain"})
    assert text.status_code == 415
    limit = api.app.state.settings.max_body_bytes
    big = await api.client.post("/v1/predict/batch", content=b" " * (limit + 1),
                                headers={"content-type": "application/json"})
    assert big.status_code == 413 and "MAX_BODY_BYTES" in big.json()["detail"]
    m = await api.metrics()
    assert m[("inference_errors_total", (("kind", "too_large"), ("route", "/v1/predict/batch")))] == 1
    assert m[("inference_errors_total", (("kind", "media_type"), ("route", "/v1/predict")))] == 1


async def test_unknown_route_and_method(api: Api) -> None:
    assert (await api.client.get("/v1/nothing")).status_code == 404
    assert (await api.client.get("/v1/predict")).status_code == 405


# ------------------------------------------------------------------ hot reload


async def _hammer(api: Api, stop: anyio.Event, seen: list[tuple[int, str | None]]) -> None:
    rows = {"instances": [SEED_BODY["features"]] * 4}
    i = 0
    while not stop.is_set():
        if i % 5 == 4:
            r = await api.client.post("/v1/predict/batch", json=rows)
        else:
            r = await api.client.post("/v1/predict", json=SEED_BODY)
        seen.append((r.status_code, r.json().get("model_version")))
        i += 1
        # The in-process transport may finish a request without suspending: yield so the poller runs.
        await anyio.lowlevel.checkpoint()


async def test_hot_reload_under_concurrent_requests_fails_nothing(registry: ModelRegistry, forest, logistic) -> None:
    v1 = registry.publish(forest)
    registry.promote(v1)
    v2 = registry.publish(logistic)
    async for api in _started(settings_for(registry, RELOAD_INTERVAL_S="0.05")):
        seen: list[tuple[int, str | None]] = []
        stop = anyio.Event()
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(_hammer, api, stop, seen)
                while len(seen) < 50:  # traffic is flowing on v1
                    await anyio.lowlevel.checkpoint()
                await anyio.to_thread.run_sync(registry.promote, v2)
                while not any(v == v2 for _, v in seen):  # the poller swaps while requests are in flight
                    await anyio.lowlevel.checkpoint()
                target = len(seen) + 100
                while len(seen) < target:
                    await anyio.lowlevel.checkpoint()
                stop.set()
        statuses = {s for s, _ in seen}
        versions = [v for _, v in seen]
        assert statuses == {200}, f"failed requests during the swap: {[s for s in seen if s[0] != 200][:5]}"
        assert versions[0] == v1 and versions[-1] == v2
        first_v2 = versions.index(v2)
        assert all(v == v2 for v in versions[first_v2 + 8:]), "after the swap (and in-flight stragglers) only v2 serves"
        info = (await api.client.get("/v1/model")).json()
        assert (info["version"], info["classifier"]) == (v2, "logistic_regression")
        m = await api.metrics()
        assert m[("inference_model_reloads_total", (("outcome", "loaded"),))] == 2


def _corrupt(registry: ModelRegistry, version: str, name: str) -> None:
    path = Path(registry.store.root) / "versions" / version / name  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


async def test_corrupt_new_version_is_refused_and_the_old_one_keeps_serving(registry: ModelRegistry, forest, logistic) -> None:
    v1 = registry.publish(forest)
    registry.promote(v1)
    async for api in _started(settings_for(registry)):
        v2 = registry.publish(logistic)
        registry.promote(v2)
        _corrupt(registry, v2, "model.onnx")  # corrupted in the store after promotion (bit rot, bad copy)
        with capture_logs() as logs:
            assert not await api.state.refresh()
            assert not await api.state.refresh(), "a refused version is not retried every poll"
        refused = [e for e in logs if e["event"] == "model_refused"]
        assert len(refused) == 1 and refused[0]["version"] == v2 and refused[0]["serving"] == v1
        response = await api.client.post("/v1/predict", json=SEED_BODY)
        assert response.status_code == 200 and response.json()["model_version"] == v1
        info = (await api.client.get("/v1/model")).json()
        assert info["version"] == v1
        assert info["last_reload_error"]["version"] == v2 and "model.onnx sha256" in info["last_reload_error"]["error"]
        assert (await api.client.get("/readyz")).status_code == 200
        m = await api.metrics()
        assert m[("inference_model_reloads_total", (("outcome", "refused"),))] == 1

        v3 = registry.publish(logistic)
        registry.promote(v3)
        assert await api.state.refresh()
        info = (await api.client.get("/v1/model")).json()
        assert info["version"] == v3 and info["last_reload_error"] is None


async def test_hot_reload_refuses_a_schema_change(registry: ModelRegistry, forest) -> None:
    registry.promote(v1 := registry.publish(forest))
    async for api in _started(settings_for(registry)):
        other = train(synthetic_dataset(n_samples=300, n_features=7, seed=2), classifier="logistic_regression")
        registry.promote(registry.publish(other))
        assert not await api.state.refresh()
        info = (await api.client.get("/v1/model")).json()
        assert info["version"] == v1 and "differs from the expected 20 features" in info["last_reload_error"]["error"]


async def test_a_fresh_replica_never_serves_another_schema_than_its_contract(registry: ModelRegistry, forest) -> None:
    """Seed 001's story: the fraud family's 17-feature model promoted where the API looks; a replica
    that starts then stays unready (out of its Service) instead of answering 20-feature requests 422."""
    other = train(synthetic_dataset(n_samples=300, n_features=17, seed=2), classifier="logistic_regression")
    registry.promote(registry.publish(other))
    async for api in _started(settings_for(registry)):
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503
        assert "17 features" in ready.json()["reason"] and "expected 20 features" in ready.json()["reason"]
        registry.promote(v2 := registry.publish(forest))
        assert await api.state.refresh()
        assert (await api.client.post("/predict-single", json=SEED_BODY)).status_code == 200
        assert (await api.client.get("/v1/model")).json()["version"] == v2


async def test_corrupt_active_version_with_nothing_verified_before_it_is_never_served(
    registry: ModelRegistry, forest
) -> None:
    registry.promote(version := registry.publish(forest))
    _corrupt(registry, version, "metadata.json")
    async for api in _started(settings_for(registry)):
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503 and "does not match CHECKSUM" in ready.json()["reason"]
        assert (await api.client.post("/v1/predict", json=SEED_BODY)).status_code == 503


async def test_a_refused_version_is_retried_with_backoff_and_loads_once_restored(
    registry: ModelRegistry, forest, logistic
) -> None:
    v1 = registry.publish(forest)
    registry.promote(v1)
    async for api in _started(settings_for(registry, RELOAD_INTERVAL_S="0.2")):
        v2 = registry.publish(logistic)
        path = Path(registry.store.root) / "versions" / v2 / "model.onnx"  # type: ignore[attr-defined]
        good_bytes = path.read_bytes()
        registry.promote(v2)
        _corrupt(registry, v2, "model.onnx")
        assert not await api.state.refresh()
        info = (await api.client.get("/v1/model")).json()
        error = info["last_reload_error"]
        assert (info["version"], info["active_version"], error["version"], error["attempts"]) == (v1, v2, v2, 1)
        assert error["next_retry_at"] > error["at"]
        assert (await api.metrics())[("inference_model_reload_failures", ())] == 1
        path.write_bytes(good_bytes)  # the file restored (or the store back after an outage)
        with anyio.fail_after(10):
            while api.state.current.version != v2:  # the poller retries on its own
                await anyio.sleep(0.05)
        info = (await api.client.get("/v1/model")).json()
        assert info["version"] == v2 and info["last_reload_error"] is None and info["active_version"] is None
        assert (await api.metrics())[("inference_model_reload_failures", ())] == 0


async def test_a_transient_store_error_during_a_reload_is_retried(registry: ModelRegistry, forest, logistic,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    registry.promote(registry.publish(forest))
    async for api in _started(settings_for(registry, RELOAD_INTERVAL_S="0.05")):
        v2 = registry.publish(logistic)
        real_load, calls = registry.load, []

        def flaky(version: str, **kwargs: Any):
            calls.append(version)
            if len(calls) == 1:
                raise OSError("connection reset by peer")
            return real_load(version, **kwargs)

        monkeypatch.setattr(api.state.registry, "load", flaky)
        registry.promote(v2)
        with anyio.fail_after(10):
            while api.state.current.version != v2:
                await anyio.sleep(0.02)
        assert calls == [v2, v2]


async def test_a_fresh_replica_serves_the_last_verified_version_while_the_active_one_is_corrupt(
    registry: ModelRegistry, forest, logistic
) -> None:
    v1 = registry.publish(forest)
    registry.promote(v1)
    v2 = registry.publish(logistic)
    registry.promote(v2)
    _corrupt(registry, v2, "model.onnx")
    async for api in _started(settings_for(registry)):
        # The replicas that were running kept v1 (they refused v2): a new one answers like them.
        ready = await api.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_version"] == v1
        info = (await api.client.get("/v1/model")).json()
        assert (info["version"], info["active_version"], info["last_reload_error"]["version"]) == (v1, v2, v2)
        answer = await api.client.post("/v1/predict", json=SEED_BODY)
        assert answer.status_code == 200 and answer.json()["model_version"] == v1


async def test_sklearn_runtime_by_setting(registry: ModelRegistry, forest) -> None:
    registry.promote(registry.publish(forest))
    async for api in _started(settings_for(registry, RUNTIME="sklearn")):
        assert (await api.client.get("/v1/model")).json()["backend"] == "sklearn"
        assert (await api.client.post("/v1/predict", json=SEED_BODY)).status_code == 200


# ------------------------------------------------------------------ settings and fault injection


def test_the_deployments_configmap_gives_what_the_environment_file_says(registry: ModelRegistry) -> None:
    api_env = load_environment("local").apps.inference_api
    settings = settings_for(registry)
    assert (settings.port, settings.batch_limit, settings.reload_interval_s, settings.max_body_bytes) == (
        api_env.port, api_env.batch_limit, api_env.reload_interval_s, api_env.body_limit)
    assert settings.fault_injection_allowed == api_env.fault_injection_allowed and not settings.faults_active


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FAULT_LATENCY_MS": "50", "FAULT_INJECTION_ALLOWED": "false"},
         "FAULT_LATENCY_MS=50 .* FAULT_INJECTION_ALLOWED is false"),
        ({"FAULT_ERROR_RATIO": "0.1", "FAULT_INJECTION_ALLOWED": "false"}, "FAULT_ERROR_RATIO=0.1"),
        ({"FAULT_ERROR_RATIO": "2", "FAULT_INJECTION_ALLOWED": "true"}, "FAULT_ERROR_RATIO: .*less than or equal to 1"),
        ({"BATCH_LIMIT": "many"}, "BATCH_LIMIT: .*valid integer.*got 'many'"),
        ({"MODEL_REGISTRY_URI": "gs://x"}, "MODEL_REGISTRY_URI: String should match"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: "),
        ({"MODEL_CONTRACT": "20 features"}, "MODEL_CONTRACT: .*JSON"),
        ({"MODEL_CONTRACT": '{"features": [], "classes": [0, 1]}'}, "MODEL_CONTRACT: .*at least 1 item"),
    ],
)
def test_bad_settings_are_one_line_errors(registry: ModelRegistry, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_for(registry, **env)


def test_missing_registry_uri_is_named() -> None:
    with pytest.raises(SettingsError, match="MODEL_REGISTRY_URI: Field required"):
        Settings.from_environ({})


@pytest.mark.parametrize("variable", ["PORT", "BATCH_LIMIT", "RELOAD_INTERVAL_S", "MAX_BODY_BYTES"])
def test_what_the_environment_file_decides_has_no_default_in_the_image(registry: ModelRegistry, variable: str) -> None:
    environ = deployed_environ(registry)
    del environ[variable]
    with pytest.raises(SettingsError, match=f"^{variable}: Field required"):
        Settings.from_environ(environ)


def test_the_api_process_reads_no_environment_file() -> None:
    """The image runs `python -m apps.api`: its settings come from its ConfigMap alone."""
    # __main__ and what its serve() imports when it runs
    modules = "apps.api.__main__, apps.api.app, apps.api.limits, apps.observability"
    probe = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'environments'))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_fault_without_permission_stops_the_server_at_start(registry: ModelRegistry) -> None:
    env = {**deployed_environ(registry, FAULT_ERROR_RATIO="0.5", FAULT_INJECTION_ALLOWED="false"),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "apps.api"], env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: FAULT_LATENCY_MS=0 / FAULT_ERROR_RATIO=0.5")


async def test_injected_errors_and_latency_when_allowed(registry: ModelRegistry, forest) -> None:
    registry.promote(registry.publish(forest))
    env = {"FAULT_INJECTION_ALLOWED": "true", "FAULT_ERROR_RATIO": "1", "FAULT_LATENCY_MS": "30"}
    async for api in _started(settings_for(registry, **env)):
        start = asyncio.get_running_loop().time()
        response = await api.client.post("/v1/predict", json=SEED_BODY)
        assert response.status_code == 500 and "injected fault" in response.json()["detail"]
        assert asyncio.get_running_loop().time() - start >= 0.029  # asyncio may wake a clock tick early
        assert (await api.client.get("/healthz")).status_code == 200, "probes are never faulted"
        m = await api.metrics()
        assert m[("inference_errors_total", (("kind", "injected"), ("route", "/v1/predict")))] == 1
