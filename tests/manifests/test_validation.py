"""Validation: clean trees pass; purpose-broken objects are caught, each finding naming where."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import pytest

from argocd.errors import ValidationFailed
from argocd.render import RenderedTree
from argocd.validate import kubernetes_version, validate_or_raise, validate_tree
from environments import load_environment
from tests.manifests.conftest import ENVS

pytestmark = pytest.mark.manifests


@pytest.mark.parametrize("name", ENVS)
def test_shipped_environments_validate_clean(name: str, trees: dict[str, RenderedTree]) -> None:
    env = load_environment(name)
    report = validate_tree(env, trees[name])
    assert report.findings == [], "\n".join(map(str, report.findings))
    assert report.checked == len(trees[name])
    assert report.kubernetes_version == kubernetes_version(env)


def broken(tree: RenderedTree, path: str, change: Callable[[dict], None]) -> RenderedTree:
    objs = []
    for obj in tree.objects:
        if obj.path == path:
            manifest = copy.deepcopy(obj.manifest)
            change(manifest)
            obj = dataclasses.replace(obj, manifest=manifest)
        objs.append(obj)
    return RenderedTree(tree.env, objs)


API = "apps/inference-api/deployment-ml-inference-api.yaml"
CRON = "apps/batch-pipeline/cronjob-pcc-daily-pipeline.yaml"
GPU = "apps/fraud-pipeline/deployment-inference-gpu.yaml"


def _pod(m: dict) -> dict:
    return (
        m["spec"]["template"]["spec"]
        if m["kind"] != "CronJob"
        else m["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    )


def _c(m: dict) -> dict:
    return _pod(m)["containers"][0]


CASES: list[tuple[str, str, Callable[[dict], None], str, str]] = [
    (
        "privileged",
        API,
        lambda m: _c(m)["securityContext"].update(privileged=True),
        "spec.template.spec.containers[0].securityContext.privileged",
        "privileged",
    ),
    (
        "latest",
        CRON,
        lambda m: _c(m).update(image="ml-pipeline:latest"),
        "spec.jobTemplate.spec.template.spec.containers[0].image",
        ":latest",
    ),
    (
        "untagged",
        API,
        lambda m: _c(m).update(image="ml-inference-api"),
        "spec.template.spec.containers[0].image",
        "no tag",
    ),
    (
        "no limits",
        API,
        lambda m: _c(m)["resources"].pop("limits"),
        "spec.template.spec.containers[0].resources.limits.cpu",
        "missing",
    ),
    (
        "no probes",
        API,
        lambda m: _c(m).pop("livenessProbe"),
        "spec.template.spec.containers[0].livenessProbe",
        "probes",
    ),
    (
        "host path",
        API,
        lambda m: _pod(m)["volumes"].append({"name": "h", "hostPath": {"path": "/var"}}),
        "spec.template.spec.volumes[2].hostPath",
        "hostPath",
    ),
    (
        "host network",
        API,
        lambda m: _pod(m).update(hostNetwork=True),
        "spec.template.spec.hostNetwork",
        "host namespaces",
    ),
    (
        "root",
        API,
        lambda m: _c(m)["securityContext"].update(runAsUser=0),
        "spec.template.spec.containers[0].securityContext.runAsUser",
        "root",
    ),
    (
        "escalation",
        CRON,
        lambda m: _c(m)["securityContext"].pop("allowPrivilegeEscalation"),
        "spec.jobTemplate.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
        "false",
    ),
    (
        "writable root",
        API,
        lambda m: _c(m)["securityContext"].update(readOnlyRootFilesystem=False),
        "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
        "must be true",
    ),
    (
        "plaintext env secret",
        API,
        lambda m: _c(m)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"}),
        "spec.template.spec.containers[0].env[1].value",
        "plain text",
    ),
    (
        "gpu without toleration",
        GPU,
        lambda m: _pod(m).pop("tolerations"),
        "spec.template.spec.tolerations",
        "GPU taint",
    ),
    (
        "namespace not restricted",
        "apps/inference-api/namespace-ml-inference.yaml",
        lambda m: m["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce": "baseline"}),
        "metadata.labels.pod-security.kubernetes.io/enforce",
        "restricted",
    ),
    ("unknown field", API, lambda m: m["spec"].update(replica=3), "spec", "'replica' was unexpected"),
    ("wrong type", API, lambda m: m["spec"].update(replicas="two"), "spec.replicas", "is not of type"),
    (
        "argocd typo",
        "applications/inference-api.yaml",
        lambda m: m["spec"]["syncPolicy"]["automated"].update(selfheal=True),
        "spec.syncPolicy.automated",
        "'selfheal' was unexpected",
    ),
    (
        "servicemonitor typo",
        "apps/inference-api/servicemonitor-ml-inference-api.yaml",
        lambda m: m["spec"]["endpoints"][0].update(intervall="30s"),
        "spec.endpoints[0]",
        "'intervall' was unexpected",
    ),
    (
        "argocd project type",
        "bootstrap/appproject.yaml",
        lambda m: m["spec"].update(sourceRepos="not-a-list"),
        "spec.sourceRepos",
        "is not of type",
    ),
]


@pytest.mark.parametrize(("case", "path", "change", "field", "text"), CASES, ids=[c[0] for c in CASES])
def test_broken_object_is_reported_with_env_app_object_and_field(
    case: str, path: str, change: Callable[[dict], None], field: str, text: str, trees: dict[str, RenderedTree]
) -> None:
    env = load_environment("local")
    report = validate_tree(env, broken(trees["local"], path, change))
    hits = [f for f in report.findings if f.path == path and f.field == field]
    assert hits, f"{case}: no finding at {field}; got {[str(f) for f in report.findings]}"
    finding = hits[0]
    assert text in finding.message
    assert finding.env == "local" and finding.object.split()[0] in {
        "Deployment",
        "CronJob",
        "Namespace",
        "Application",
        "AppProject",
        "ServiceMonitor",
    }
    assert str(finding).startswith(f"env local, app {finding.app}, {finding.object}, field {field}")


def test_plaintext_secret_object_is_refused(trees: dict[str, RenderedTree]) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "ml-inference", "labels": {}},
        "stringData": {"password": "hunter2"},
    }
    obj = dataclasses.replace(
        trees["local"].objects[0], path="apps/inference-api/secret-creds.yaml", app="inference-api", manifest=secret
    )
    tree = RenderedTree("local", [*trees["local"].objects, obj])
    with pytest.raises(ValidationFailed, match="plaintext secret") as info:
        validate_or_raise(load_environment("local"), tree)
    assert info.value.findings[0].object == "Secret ml-inference/creds"
