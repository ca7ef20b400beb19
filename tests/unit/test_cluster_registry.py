"""One registry of cluster providers: the pytest option, `mlops harness cluster`, `mlops up` and
`mlops stack` accept the same names, and each name makes the provider that answers to it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.clusters.errors import UnknownProviderError
from harness.clusters.providers import LOCAL_PROVIDERS, PROVIDER_NAMES, ClusterInfo, make_provider

pytest_plugins = ["pytester"]

# The inner run's test: the provider the plugin makes for the name it was given.
REPORT_PROVIDER = """
def test_provider(cluster_settings, pytestconfig):
    out = pytestconfig.rootpath / "provider.txt"
    out.write_text(f"{cluster_settings.provider} {cluster_settings.make_provider().name}")
"""


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_each_name_makes_the_provider_that_answers_to_it(name: str, tmp_path) -> None:
    provider = make_provider(name, kubeconfig=tmp_path / "kubeconfig")
    assert provider.name == name
    # A cluster it reports on is typed with the same name.
    ClusterInfo(provider=provider.name, name="c", kubeconfig=tmp_path, created=False, simulated=False)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError, match="unknown provider 'minikube'; expected one of kwok, kind, existing"):
        make_provider("minikube")


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_name_the_cli_accepts_the_pytest_plugin_accepts(name: str, pytester: pytest.Pytester) -> None:
    # `existing` never deletes: the one CLI call that is safe for every provider without a cluster.
    if name == "existing":
        result = CliRunner().invoke(app, ["harness", "cluster", "delete", "--provider", name, "--name", "c1"])
        assert result.exit_code == 0, result.output
        assert "deleted existing/c1" in result.output
    pytester.makepyfile(REPORT_PROVIDER)
    run = pytester.runpytest_inprocess(f"--cluster={name}", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=1)
    assert (pytester.path / "provider.txt").read_text() == f"{name} {name}"


def test_the_cli_refuses_a_name_the_registry_does_not_know() -> None:
    result = CliRunner().invoke(app, ["harness", "cluster", "delete", "--provider", "minikube"])
    assert result.exit_code == 1
    assert "expected one of kwok, kind, existing" in result.output


def test_mlops_up_and_the_stack_take_the_local_providers_only() -> None:
    assert set(LOCAL_PROVIDERS) < set(PROVIDER_NAMES)
    result = CliRunner().invoke(app, ["up", "local", "--provider", "existing"])
    assert result.exit_code == 1
    assert "unknown provider 'existing'; expected auto or one of kwok, kind" in result.output
    result = CliRunner().invoke(app, ["stack", "preview", "local", "--provider", "existing"])
    assert result.exit_code == 1
    assert "unknown provider 'existing'; expected auto or one of kwok, kind" in result.output
