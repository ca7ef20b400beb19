"""Day one of each model family: the bootstrap Job's entry point on a real registry (a folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.bootstrap import workload
from apps.bootstrap.__main__ import main
from apps.bootstrap.run import bootstrap
from apps.fraud.records import FEATURE_NAMES
from apps.inference import ContractMismatch, ModelRegistry, synthetic_dataset, train
from environments import load_environment
from environments.model import ModelContract

LOCAL = load_environment("local")


def _environ(env_family: str, registry: ModelRegistry, **extra: str) -> dict[str, str]:
    """What the family's Job gets from its ConfigMap, with a test registry."""
    return {**workload.config(LOCAL, env_family), "MODEL_REGISTRY_URI": registry.uri, **extra}  # type: ignore[arg-type]


@pytest.mark.parametrize(("family", "features"), [("inference", [f"f{i}" for i in range(20)]),
                                                 ("fraud", list(FEATURE_NAMES))])
def test_an_empty_family_gets_its_first_model_of_its_contract(tmp_path: Path, family: str, features: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(f"file://{tmp_path}/{family}")
    assert main(_environ(family, registry)) == 0
    outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert outcome["trained"] is True and outcome["features"] == len(features)
    active = registry.load()
    assert active.version == outcome["version"] and active.schema.features == features
    assert registry.contract() == active.schema  # pinned: later promotions must keep it


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(f"file://{tmp_path}/inference")
    contract = LOCAL.models["inference"]
    first = bootstrap("inference", contract, registry)
    again = bootstrap("inference", contract, registry)
    assert (again.trained, again.version) == (False, first.version)
    assert registry.versions() == [first.version]


def test_a_featurizer_defined_family_pins_what_its_first_model_takes(tmp_path: Path) -> None:
    registry = ModelRegistry(f"file://{tmp_path}/pcc")
    outcome = bootstrap("pcc", LOCAL.models["pcc"], registry)
    contract = registry.contract()
    assert contract is not None and outcome.trained
    assert contract.features[0] == "hashing:0" and contract.n_features == 584  # MiniLM-sized hashing + TF-IDF


def test_an_active_model_of_another_schema_is_replaced_by_one_of_the_contract(tmp_path: Path) -> None:
    """The old harness seeding's story: the API's 20-feature model active in the fraud family, so
    the fraud inference stage refused it and thousands of transactions waited."""
    registry = ModelRegistry(f"file://{tmp_path}/fraud")
    registry.promote(wrong := registry.publish(train(synthetic_dataset(n_samples=300), classifier="logistic_regression")))
    outcome = bootstrap("fraud", LOCAL.models["fraud"], registry)
    assert outcome.trained and outcome.version != wrong
    assert registry.load().schema.features == list(FEATURE_NAMES)


def test_a_registry_pinned_to_another_contract_fails_naming_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(f"file://{tmp_path}/inference")
    other = LOCAL.models["inference"].model_copy(update={"features": 7})
    bootstrap("inference", ModelContract.model_validate(other.model_dump()), registry)
    with pytest.raises(ContractMismatch, match=r"contract is 7 features \[f0, f1, f2, ...\].*not 20 features"):
        bootstrap("inference", LOCAL.models["inference"], registry)
    assert main(_environ("inference", registry)) == 1
    assert "the family's contract is 7 features" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    ({"MODEL_FAMILY": ""}, "MODEL_FAMILY, MODEL_REGISTRY_URI, MODEL_CONTRACT not set"),
    ({"MODEL_FAMILY": "images"}, "MODEL_FAMILY='images': Input should be 'inference', 'fraud' or 'pcc'"),
    ({"MODEL_CONTRACT": "{"}, "MODEL_CONTRACT='{': Value error, expected the environment's models.<family> as JSON"),
])
def test_bad_settings_are_one_line_naming_the_variable(tmp_path: Path, extra: dict[str, str], message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(f"file://{tmp_path}/inference")
    environ = _environ("inference", registry, **extra)
    if extra.get("MODEL_FAMILY") == "":
        environ = {k: v for k, v in environ.items() if k not in ("MODEL_REGISTRY_URI", "MODEL_CONTRACT")}
    assert main(environ) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


def test_every_family_in_use_has_its_job_and_each_app_serves_its_own_family() -> None:
    for name in ("local", "dev", "prod"):
        env = load_environment(name)
        jobs = {o["metadata"]["name"]: o for o in workload.objects(env) if o["kind"] == "Job"}
        assert sorted(jobs) == [f"model-bootstrap-{f}" for f in ("fraud", "inference", "pcc")]
        for job in jobs.values():
            assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
            assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_the_entry_point_runs_as_the_image_runs_it(tmp_path: Path) -> None:
    """`python -m apps.bootstrap` in a child process, settings from its environment only."""
    registry = ModelRegistry(f"file://{tmp_path}/inference")
    proc = subprocess.run([sys.executable, "-m", "apps.bootstrap"], env={**_environ("inference", registry),
                          "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["version"] == registry.active_version()
