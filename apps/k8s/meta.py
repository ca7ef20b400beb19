"""Who an object belongs to (labels, metadata) and why it may fail a scanner's check (annotations)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from environments.model import Environment

Obj = dict[str, Any]

PART_OF = "ml-platform"
MANAGED_BY = "mlops-toolkit"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
CHECKOV_SKIP = "checkov.io/skip{n}"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_WHY = "mlops-toolkit.io/kube-score-ignore-why"  # kube-score's annotation has no room for reasons


class BuildError(ValueError):
    """A workload spec that cannot be built from the environment; the message names where."""


@dataclass(frozen=True)
class AppMeta:
    """Who an object belongs to: the source of every label and selector of one component."""

    env: Environment
    name: str  # app.kubernetes.io/name: the app ("inference-api", "fraud-pipeline")
    component: str  # app.kubernetes.io/component: the part of the app ("api", "data-gather")
    extra: Mapping[str, str] = field(default_factory=dict)

    def selector(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/instance": f"{self.name}-{self.env.name}",
            "app.kubernetes.io/component": self.component,
        }

    def labels(self) -> dict[str, str]:
        return {
            **self.selector(),
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            **self.extra,
        }

    def app_selector(self) -> dict[str, str]:
        """Every component of this app in this environment (for policies spanning stages)."""
        return {k: v for k, v in self.selector().items() if k != "app.kubernetes.io/component"}

    def with_component(self, component: str, **extra: str) -> AppMeta:
        return AppMeta(env=self.env, name=self.name, component=component, extra={**self.extra, **extra})


def metadata(*, meta: AppMeta, name: str, namespace: str | None, annotations: Mapping[str, str] | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = meta.labels()
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def checkov_skips(*reasons: tuple[str, str]) -> dict[str, str]:
    """Skip annotations for checks the project has justified: (check id, why)."""
    return {CHECKOV_SKIP.format(n=i): f"{check}={why}" for i, (check, why) in enumerate(reasons, start=1)}


def kube_score_ignores(*reasons: tuple[str, str]) -> dict[str, str]:
    """kube-score's ignore annotation for tests the project has justified: (test id, why)."""
    if not reasons:
        return {}
    return {KUBE_SCORE_IGNORE: ",".join(test for test, _ in reasons),
            KUBE_SCORE_WHY: "\n".join(f"{test}: {why}" for test, why in reasons)}


def workload_skips(env: Environment, *, kube_score: Sequence[tuple[str, str]] = (),
                   checkov: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """checkov checks and kube-score tests a workload of ours fails on purpose, with the reason."""
    reasons = [
        (
            "CKV_K8S_43",
            "images are pinned by immutable tag (release or content hash); the digest is only known after the push",
        ),
        *checkov,
    ]
    scores = list(kube_score)
    if env.images.pull_policy != "Always":
        why = (f"pull policy {env.images.pull_policy} comes from the environment: "
               "tags are immutable, and local images live on the node")
        reasons.append(("CKV_K8S_15", why))
        scores.append(("container-image-pull-policy", why))
    return {**checkov_skips(*reasons), **kube_score_ignores(*scores)}
