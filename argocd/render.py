"""Render one environment into the file tree Argo CD syncs.

    >>> from environments import load_environment
    >>> tree = render_environment(load_environment("local"), image_tag="abc123")
    >>> "apps/inference-api/deployment-ml-inference-api.yaml" in tree
    True

Layout (relative to ``env.gitops.path`` in the GitOps repo)::

    bootstrap/appproject.yaml         the AppProject (applied once with the root app)
    bootstrap/addons-appproject.yaml  the upstream charts' AppProject (cloud environments)
    bootstrap/root-application.yaml   the app of apps: syncs applications/
    applications/<app>.yaml           one Application per app: syncs apps/<app>/ (a chart
                                      add-on: its pinned chart, plus apps/<app>/ if any)
    apps/<app>/<kind>-<name>.yaml     one Kubernetes object per file
    templates/<app>/<kind>-<name>.yaml  on-demand objects (the manual batch Job), never synced

Re-rendering an unchanged environment is byte-identical: keys keep the builders' order,
files are sorted, YAML is emitted with fixed options.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from apps.addons.charts import Chart
from apps.addons.upstream import UpstreamError
from apps.batch import workload as batch
from apps.cloud import CloudMetadata, CloudMetadataError
from apps.k8s import SYNC_WAVE, BuildError, Obj
from argocd import catalog, objects
from argocd.errors import RenderError
from environments.model import Environment, Images

# Within an app: namespaces, then guard rails and identities, then workloads, then what
# refers to workloads (HPA, PDB) and CRD-backed objects.
KIND_WAVES: dict[str, int] = {
    "CustomResourceDefinition": -3,
    "Namespace": -3,
    "StorageClass": -1,
    "ResourceQuota": -2,
    "LimitRange": -2,
    "ServiceAccount": -1,
    "Role": -1,
    "RoleBinding": -1,
    "ClusterRole": -1,
    "ClusterRoleBinding": -1,
    "ConfigMap": -1,
    "Secret": -1,
    "NetworkPolicy": -1,
    # With its consumers: a claim of a WaitForFirstConsumer class (local-path, EBS gp3) binds only
    # once a pod uses it, and Argo CD would wait for it to be Healthy before the next wave forever.
    "PersistentVolumeClaim": 0,
    "Deployment": 0,
    "Service": 0,
    "CronJob": 0,
    "Job": 0,
    "Ingress": 0,
    "HorizontalPodAutoscaler": 1,
    "PodDisruptionBudget": 1,
    "ServiceMonitor": 1,
    # An aggregated API is served once its Service has a ready endpoint.
    "APIService": 1,
    # After the chart's CRDs (same Application); a Secret mounted optional appears when synced.
    "ClusterSecretStore": 1,
    "ExternalSecret": 1,
}
# Kinds whose CRDs come from an add-on that syncs in parallel: Argo CD skips their dry run until
# the CRD exists (and retries), instead of failing the whole sync.
OPTIONAL_CRD_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com",
    "ClusterSecretStore": "external-secrets.io",
    "ExternalSecret": "external-secrets.io",
}


@dataclass(frozen=True)
class RenderedObject:
    path: str
    app: str  # an app name, or "argocd" for the Argo CD objects
    wave: int
    manifest: Obj
    synced: bool = True  # False for templates/

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        return object_name(self.manifest)

    @property
    def namespace(self) -> str | None:
        namespace = self.manifest["metadata"].get("namespace")
        return str(namespace) if namespace is not None else None

    @property
    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"

    @property
    def requires_crd(self) -> str | None:
        """The API group of a CRD the cluster must have, for objects outside core Kubernetes."""
        if self.manifest["apiVersion"].startswith("argoproj.io/"):
            return "argoproj.io"
        return OPTIONAL_CRD_KINDS.get(self.kind)


class RenderedTree(Mapping[str, bytes]):
    """relative path -> YAML bytes, plus every object with its app and sync wave."""

    def __init__(self, env: str, objects: list[RenderedObject]) -> None:
        self.env = env
        self.objects: tuple[RenderedObject, ...] = tuple(sorted(objects, key=lambda o: o.path))
        self._files = {o.path: dump(o.manifest) for o in self.objects}
        if len(self._files) != len(self.objects):
            paths = [o.path for o in self.objects]
            dup = next(p for p in paths if paths.count(p) > 1)
            raise RenderError(f"env {env}: two objects render to {dup}; names must be unique per kind and app")

    def __getitem__(self, path: str) -> bytes:
        return self._files[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def app_objects(self, app: str | None = None) -> list[RenderedObject]:
        """Synced workload objects (not Argo CD's, not templates) in apply order: wave, then path."""
        chosen = [o for o in self.objects if o.synced and o.app != "argocd" and (app is None or o.app == app)]
        return sorted(chosen, key=lambda o: (o.wave, o.path))

    def write(self, directory: Path) -> None:
        """Write the tree under ``directory``, removing files of an earlier render that are gone."""
        directory.mkdir(parents=True, exist_ok=True)
        for old in sorted(directory.rglob("*.yaml")):
            if old.relative_to(directory).as_posix() not in self._files:
                old.unlink()
        for path, data in self._files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, no aliases: what a person expects to read."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(manifest: Obj) -> bytes:
    text = yaml.dump(
        manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True
    )
    return text.encode("utf-8")


def with_tag(env: Environment, image_tag: str | None) -> Environment:
    if image_tag is None:
        return env
    try:
        images = Images.model_validate({**env.images.model_dump(), "tag": image_tag})
    except ValidationError as e:
        raise RenderError(f"env {env.name}: image tag {image_tag!r} refused: {e.errors()[0]['msg']}") from None
    return env.model_copy(update={"images": images})


def as_deployed(env: Environment, cloud: CloudMetadata) -> Environment:
    """The environment as deployed: its images come from the stack's registry (when it names
    one), by the digests its push reported (when it has them)."""
    update: dict[str, object] = {}
    if cloud.registry:
        update["registry"] = cloud.registry
    if cloud.image_digests:
        update["digests"] = dict(cloud.image_digests)
    return env.model_copy(update={"images": env.images.model_copy(update=update)}) if update else env


def _annotate(manifest: Obj, wave: int) -> Obj:
    out = copy.deepcopy(manifest)
    annotations = out["metadata"].setdefault("annotations", {})
    annotations[SYNC_WAVE] = str(wave)
    if manifest["kind"] in OPTIONAL_CRD_KINDS:
        annotations["argocd.argoproj.io/sync-options"] = "SkipDryRunOnMissingResource=true"
    if manifest["kind"] == "CustomResourceDefinition":
        # Upstream CRDs are large: server-side apply keeps no last-applied copy of them.
        annotations["argocd.argoproj.io/sync-options"] = "ServerSideApply=true"
    return out


def object_name(manifest: Obj) -> str:
    """metadata.name, or the generateName prefix of a template the API server names on create."""
    metadata = manifest["metadata"]
    return str(metadata["name"] if "name" in metadata else metadata["generateName"].rstrip("-"))


def _file(manifest: Obj) -> str:
    # RBAC names may hold colons (system:metrics-server): not in file names.
    return f"{manifest['kind'].lower()}-{object_name(manifest).replace(':', '-')}.yaml"


def render_environment(
    env: Environment,
    *,
    image_tag: str | None = None,
    cloud: CloudMetadata | None = None,
    repo_url: str | None = None,
) -> RenderedTree:
    """Every enabled app and add-on of ``env`` plus its Argo CD objects.

    image_tag: overrides ``env.images.tag`` (the harness passes content-hash tags).
    cloud: what the environment's stack created (registry, IAM roles, VPC, EFS): the stack's
        `gitops_metadata` output; required where a role or id is named (IRSA, the chart add-ons).
    repo_url: the URL Argo CD clones (defaults to ``env.gitops.repo_url``).
    """
    cloud = cloud or CloudMetadata()
    unknown = sorted(set(cloud.role_arns) - catalog.role_holders())
    if unknown:
        raise RenderError(f"role_arns names unknown app(s) {unknown}; expected some of {sorted(catalog.role_holders())}")
    env = with_tag(as_deployed(env, cloud), image_tag)
    source = repo_url or env.gitops.repo_url
    rendered: list[RenderedObject] = []
    apps = [*catalog.enabled_addons(env), *catalog.enabled_apps(env)]
    for app in apps:
        manifests = _build(app.name, lambda: app.objects(env, role_arn=cloud.role_arn(app.name)))
        rendered += _app_objects(env, app.name, manifests)
        rendered.append(
            _argocd(
                objects.application(
                    env=env,
                    app=app.name,
                    repo_url=source,
                    path=f"{env.gitops.path}/apps/{app.name}",
                    namespace=app.namespace(env),
                    wave=app.wave,
                    create_namespace=not app.owns_namespace,
                    ignore_replicas_of=[m["metadata"]["name"] for m in manifests if _scaled_by_hpa(m, manifests)],
                ),
                f"applications/{app.name}.yaml",
            )
        )
    charts = catalog.enabled_charts(env)
    for chart in charts:
        rendered += _chart(env, chart, cloud, source)
    if env.apps.batch_pipeline.enabled:
        job = batch.manual_job(env)
        rendered.append(
            RenderedObject(
                path=f"templates/{batch.APP}/{_file(job)}", app=batch.APP, wave=0, manifest=job, synced=False
            )
        )
    chart_names = {c.name for c in charts}
    workloads = [o for o in rendered if o.app not in ("argocd", *chart_names) and o.kind != "Namespace"]
    kinds = {(_group(o.manifest), o.kind) for o in workloads if o.namespace}
    cluster_kinds = {(_group(o.manifest), o.kind) for o in workloads if not o.namespace}
    rendered.append(
        _argocd(
            objects.app_project(
                env=env, repo_url=source, namespaces=[a.namespace(env) for a in apps], namespaced_kinds=kinds,
                cluster_kinds=cluster_kinds,
            ),
            APPPROJECT_FILE,
        )
    )
    if charts:
        rendered.append(_argocd(objects.addons_project(
            env=env, repo_url=source, chart_repos=[c.repo_url for c in charts], namespaces=[c.namespace for c in charts]),
            ADDONS_APPPROJECT_FILE))
    rendered.append(
        _argocd(
            objects.root_application(env=env, repo_url=source, path=f"{env.gitops.path}/applications"),
            ROOT_APP_FILE,
        )
    )
    return RenderedTree(env.name, rendered)


APPPROJECT_FILE = "bootstrap/appproject.yaml"
ADDONS_APPPROJECT_FILE = "bootstrap/addons-appproject.yaml"
ROOT_APP_FILE = "bootstrap/root-application.yaml"


def _build(app: str, build: Any) -> list[Obj]:
    try:
        return list(build())
    except (BuildError, CloudMetadataError, UpstreamError) as e:
        raise RenderError(f"app {app}: {e}") from None


def _app_objects(env: Environment, app: str, manifests: list[Obj]) -> list[RenderedObject]:
    out = []
    for manifest in manifests:
        wave = KIND_WAVES.get(manifest["kind"])
        if wave is None:
            raise RenderError(
                f"env {env.name}, app {app}: kind {manifest['kind']} has no sync wave; add it to KIND_WAVES"
            )
        out.append(RenderedObject(path=f"apps/{app}/{_file(manifest)}", app=app, wave=wave,
                                  manifest=_annotate(manifest, wave)))
    return out


def _chart(env: Environment, chart: Chart, cloud: CloudMetadata, source: str) -> list[RenderedObject]:
    """A chart add-on's Application, and the objects of ours synced beside its chart."""
    own = _app_objects(env, chart.name, _build(chart.name, lambda: chart.objects(env, cloud)))
    application = objects.chart_application(
        env=env, app=chart.name, chart_repo=chart.repo_url, chart=chart.chart, version=chart.version(env),
        values=_build(chart.name, lambda: [chart.values(env, cloud)])[0], namespace=chart.namespace,
        wave=catalog.CHART_WAVE, repo_url=source, path=f"{env.gitops.path}/apps/{chart.name}" if own else None)
    return [*own, _argocd(application, f"applications/{chart.name}.yaml")]


def _argocd(manifest: Obj, path: str) -> RenderedObject:
    return RenderedObject(
        path=path, app="argocd", wave=int(manifest["metadata"]["annotations"][SYNC_WAVE]), manifest=manifest
    )


def _group(manifest: Obj) -> str:
    api_version = str(manifest["apiVersion"])
    return api_version.split("/")[0] if "/" in api_version else ""


def _scaled_by_hpa(manifest: Obj, manifests: list[Obj]) -> bool:
    return manifest["kind"] == "Deployment" and any(
        m["kind"] == "HorizontalPodAutoscaler" and m["spec"]["scaleTargetRef"]["name"] == manifest["metadata"]["name"]
        for m in manifests
    )


def service_accounts(env: Environment) -> list[tuple[str, str, str]]:
    """(app, namespace, service account) of every enabled app: what infra associates with IAM roles
    (the add-ons that call AWS: `apps.addons.charts.calling_aws`)."""
    return [(a.name, a.namespace(env), a.module.SERVICE_ACCOUNT) for a in catalog.enabled_apps(env)]
