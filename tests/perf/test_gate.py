"""The gate's judgement on measured figures: what breaches, what is only a note, what regresses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from environments import load_environment
from harness.load.baseline import Baseline, BaselineEndpoint, baseline_from, load_baseline, write_baseline
from harness.load.errors import BaselineError, LoadRunError, TargetError
from harness.load.gate import evaluate
from harness.load.results import EndpointResult, RunResult, read_stats_json
from harness.load.runner import check_target
from harness.load.schema import parse_model_info

pytestmark = pytest.mark.unit

ENV = load_environment("local")
MIXED = ENV.perf.profiles["mixed"]


def _result(*, scale: float = 0.5, failures: int = 0, requests: int = 4000, rps: float | None = None) -> RunResult:
    """Figures at `scale` times each configured limit (below 1: within the gate)."""
    endpoints = {
        key: EndpointResult(
            requests=requests // len(MIXED.endpoints), failures=0, median_ms=1.0, p95_ms=t.p95_ms * scale,
            p99_ms=t.p99_ms * scale, max_ms=t.p99_ms * scale, requests_per_s=1.0,
        )
        for key, t in MIXED.endpoints.items()
    }
    return RunResult(requests=requests, failures=failures, requests_per_s=rps if rps is not None else MIXED.min_rps * 2,
                     endpoints=endpoints)


def test_figures_within_every_threshold_pass() -> None:
    verdict = evaluate(profile_name="mixed", profile=MIXED, result=_result())
    assert verdict.passed, verdict.summary()


def test_each_breached_threshold_is_named_with_measured_and_allowed() -> None:
    result = _result(scale=2.0, failures=400, rps=MIXED.min_rps / 2)
    verdict = evaluate(profile_name="mixed", profile=MIXED, result=result)
    messages = [b.message for b in verdict.breaches]
    for key, t in MIXED.endpoints.items():
        assert f"{key} p95: measured {t.p95_ms * 2:.1f} ms, allowed {t.p95_ms:.1f} ms" in messages
        assert f"{key} p99: measured {t.p99_ms * 2:.1f} ms, allowed {t.p99_ms:.1f} ms" in messages
    assert any(m.startswith(f"failure ratio: measured 10.00%, allowed {MIXED.failure_ratio:.2%}") for m in messages)
    assert any(m.startswith(f"requests/s: measured {MIXED.min_rps / 2:.1f} req/s, allowed {MIXED.min_rps:.1f}")
               for m in messages)
    assert "perf gate failed: profile mixed" in verdict.summary()


def test_a_lone_failure_within_the_ratio_is_a_note_not_a_breach() -> None:
    verdict = evaluate(profile_name="mixed", profile=MIXED, result=_result(failures=1))
    assert verdict.passed
    assert any("1 of 4000 requests failed" in n for n in verdict.notes)


def test_an_endpoint_without_traffic_fails_the_gate() -> None:
    result = _result()
    result = result.model_copy(update={"endpoints": {k: v for k, v in result.endpoints.items() if k != "GET /v1/model"}})
    verdict = evaluate(profile_name="mixed", profile=MIXED, result=result)
    assert [b.threshold for b in verdict.breaches] == ["GET /v1/model requests"]


def _baseline(result: RunResult) -> Baseline:
    return baseline_from(result, machine="m", env="local", profile="mixed", target="container")


def test_baseline_flags_a_slowdown_beyond_the_ratio() -> None:
    base = _baseline(_result(scale=0.2))
    slower = _result(scale=0.2 * ENV.perf.regression_ratio * 1.5, rps=base.requests_per_s / (ENV.perf.regression_ratio * 2))
    verdict = evaluate(profile_name="mixed", profile=MIXED, result=slower, baseline=base,
                       regression_ratio=ENV.perf.regression_ratio, regression_floor_ms=ENV.perf.regression_floor_ms)
    kinds = {b.threshold for b in verdict.breaches if b.kind == "regression"}
    assert "POST /v1/predict/batch p95 vs baseline" in kinds
    assert "requests/s vs baseline" in kinds
    assert all("baseline m/local/mixed" in b.detail for b in verdict.breaches if b.kind == "regression")


def test_baseline_ignores_differences_below_the_noise_floor() -> None:
    tiny = {k: BaselineEndpoint(p95_ms=1.0, p99_ms=2.0) for k in MIXED.endpoints}
    base = Baseline(machine="m", env="local", profile="mixed", target="container", recorded_at=datetime.now(UTC),
                    requests=1, requests_per_s=1.0, endpoints=tiny)
    now = _result(scale=0.0)
    now = now.model_copy(update={"endpoints": {k: e.model_copy(update={"p95_ms": 1.0 + ENV.perf.regression_floor_ms})
                                               for k, e in now.endpoints.items()}})
    verdict = evaluate(profile_name="mixed", profile=MIXED, result=now, baseline=base,
                       regression_ratio=ENV.perf.regression_ratio, regression_floor_ms=ENV.perf.regression_floor_ms)
    assert not [b for b in verdict.breaches if b.kind == "regression"]


def test_baseline_files_round_trip_and_a_broken_one_names_the_field(tmp_path: Path) -> None:
    path = write_baseline(_baseline(_result()), tmp_path / "m" / "local-mixed.json")
    loaded = load_baseline(path)
    assert loaded is not None
    assert loaded == _baseline(_result()).model_copy(update={"recorded_at": loaded.recorded_at})
    assert load_baseline(tmp_path / "absent.json") is None
    path.write_text('{"machine": "m"}')
    with pytest.raises(BaselineError, match=r"local-mixed.json: field 'env'"):
        load_baseline(path)


def test_locust_stats_json_is_read_per_endpoint_with_locusts_percentiles(tmp_path: Path) -> None:
    def entry(method: str, name: str, times: dict[int, int], failures: int) -> dict[str, object]:
        n = sum(times.values())
        return {"name": name, "method": method, "num_requests": n, "num_none_requests": 0, "num_failures": failures,
                "total_response_time": float(sum(k * v for k, v in times.items())),
                "max_response_time": float(max(times)), "start_time": 1000.0, "last_request_timestamp": 1010.0,
                "response_times": {str(k): v for k, v in times.items()}, "num_reqs_per_sec": {}}

    # 100 predictions: 90 at 4 ms, 5 at 11 ms, 4 at 19 ms, 1 at 80 ms; Locust reads percentiles from
    # the top, so p95 is 19 (5 requests take 19 ms or more) and p99 is 80.
    predict = entry("POST", "/v1/predict", {4: 90, 11: 5, 19: 4, 80: 1}, failures=1)
    model = entry("GET", "/v1/model", {2: 10}, failures=0)
    path = tmp_path / "locust.json"
    path.write_text(json.dumps([predict, model]))
    result = read_stats_json(path)
    assert (result.requests, result.failures, result.requests_per_s, result.duration_s) == (110, 1, 11.0, 10.0)
    p = result.endpoints["POST /v1/predict"]
    assert (p.median_ms, p.p95_ms, p.p99_ms, p.max_ms, p.requests_per_s) == (4, 19, 80, 80.0, 10.0)
    assert result.endpoints["GET /v1/model"].p99_ms == 2
    with pytest.raises(LoadRunError, match="wrote no statistics"):
        read_stats_json(tmp_path / "missing.json")
    path.write_text('{"not": "a list"}')
    with pytest.raises(LoadRunError, match="not Locust's stats JSON"):
        read_stats_json(path)


def test_targets_off_this_machine_need_an_explicit_permission() -> None:
    assert check_target("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    with pytest.raises(TargetError, match="--allow-remote"):
        check_target("http://api.staging.example.com")
    assert check_target("https://api.staging.example.com", allow_remote=True)


def test_feature_schema_is_read_from_the_model_answer() -> None:
    schema = parse_model_info({"version": "v7", "feature_schema": {"features": ["a", "b"], "classes": [0, 1]}},
                              source="GET /v1/model")
    assert (schema.model_version, [f.name for f in schema.features]) == ("v7", ["a", "b"])
    with pytest.raises(Exception, match="no feature list"):
        parse_model_info({"status": "ok"}, source="GET /v1/model")


def test_fault_injection_is_refused_where_the_environment_forbids_it() -> None:
    from harness.load.target import Faults

    assert Faults(latency_ms=100).api_env(ENV)["FAULT_LATENCY_MS"] == "100"
    assert Faults().api_env(load_environment("prod")) == {}
    with pytest.raises(TargetError, match="'prod' does not allow fault injection"):
        Faults(error_ratio=0.5).api_env(load_environment("prod"))
