"""Schema validation of a rendered tree, before anything leaves the machine.

Kubernetes objects are checked against the (strict) JSON schemas of the environment's
Kubernetes version shipped by kubernetes-validate; Argo CD objects against the CRD schemas
inside the pinned ``github.com/argoproj/argo-cd/v3`` Go module, and the ServiceMonitor
against the Prometheus operator's CRD from its Go module; both are fetched into the Go module
cache with ``go mod download`` (never copied into this repository).

    >>> from environments import load_environment
    >>> from argocd.render import render_environment
    >>> env = load_environment("local")
    >>> validate_tree(env, render_environment(env)).findings
    []
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from apps.addons import prometheus_crds
from apps.addons.upstream import UpstreamError, load_all, module_dir
from argocd.errors import GitOpsError, ValidationFailed
from argocd.findings import Finding, dotted
from argocd.policy import check_policy
from argocd.render import RenderedObject, RenderedTree
from environments.model import Environment

# The version the local clusters run (the harness builds this minor); cloud envs name theirs.
LOCAL_KUBERNETES_VERSION = "1.33"
ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
ESO_MODULE = "github.com/external-secrets/external-secrets"


@dataclass
class Report:
    env: str
    kubernetes_version: str
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def raise_for_findings(self) -> None:
        if self.findings:
            raise ValidationFailed(self.env, self.findings)


def kubernetes_version(env: Environment) -> str:
    return env.aws.cluster.kubernetes_version if env.aws else LOCAL_KUBERNETES_VERSION


def validate_tree(env: Environment, tree: RenderedTree, *, policy: bool = True) -> Report:
    version = kubernetes_version(env)
    report = Report(env=env.name, kubernetes_version=version)
    sources = crd_sources(env)
    for obj in tree.objects:
        report.checked += 1
        report.findings += _schema_findings(env.name, obj, version, sources)
    if policy:
        report.findings += check_policy(env, tree)
    return report


def validate_or_raise(env: Environment, tree: RenderedTree) -> Report:
    report = validate_tree(env, tree)
    report.raise_for_findings()
    return report


def _finding(env: str, obj: RenderedObject, field_: str, message: str) -> Finding:
    return Finding(env=env, app=obj.app, object=obj.ref, path=obj.path, field=field_, check="schema", message=message)


def _schema_findings(env: str, obj: RenderedObject, version: str, sources: dict[str, CrdSource]) -> list[Finding]:
    group = obj.manifest["apiVersion"].split("/")[0] if "/" in obj.manifest["apiVersion"] else ""
    try:
        validator = (_crd_validator(obj, sources[group], group) if group in sources
                     else _kubernetes_validator(obj, version))
    except LookupError as e:
        return [_finding(env, obj, "apiVersion", str(e))]
    return [_finding(env, obj, dotted(err.absolute_path), _message(err)) for err in _errors(validator, obj.manifest)]


def _errors(validator: Any, manifest: dict[str, Any]) -> list[jsonschema.ValidationError]:
    return sorted(validator.iter_errors(manifest), key=lambda e: (list(map(str, e.absolute_path)), e.message))


def _message(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        return f"unknown field: {err.message}"
    return str(err.message)


# ---------------------------------------------------------------- Kubernetes schemas


def _kubernetes_validator(obj: RenderedObject, version: str) -> Any:
    api_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj.manifest["apiVersion"])
    return _k8s_schema(obj.kind.lower(), api_version, _schema_version(version), obj.manifest["apiVersion"], obj.kind)


def _schema_version(version: str) -> str:
    available = [v for v in kv.all_versions() if kv.major_minor(v) == version]
    if not available:
        raise GitOpsError(
            f"Kubernetes {version}: kubernetes-validate {', '.join(kv.major_minor(v) for v in kv.all_versions())} "
            "has no schemas for it; pick a supported aws.cluster.kubernetes_version or update the pin"
        )
    return str(available[-1])


@functools.cache
def _k8s_schema(kind: str, api_version: str, version: str, full_api_version: str, kind_name: str) -> Any:
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = kv.schema_contents(f"{schema_dir}/{kind}-{api_version}.json", version)
    except FileNotFoundError:
        raise LookupError(f"Kubernetes {kv.major_minor(version)} has no {kind_name} in {full_api_version}") from None
    registry: Registry = _definitions(schema_dir, version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def _definitions(schema_dir: str, version: str) -> Any:
    # Large (every type of the API): read once per version, shared by every kind.
    return Resource.from_contents(kv.schema_contents(f"{schema_dir}/_definitions.json", version))


# ---------------------------------------------------------------- CRD schemas (Argo CD, Prometheus operator)


@dataclass(frozen=True)
class CrdSource:
    """Where a CRD-backed API group's schemas live: files inside a pinned Go module."""

    module: str
    version: str
    pattern: str  # glob inside the module


def crd_sources(env: Environment) -> dict[str, CrdSource]:
    """The CRD-backed groups a tree may use, each at the version the environment deploys."""
    return {
        "argoproj.io": CrdSource(ARGOCD_MODULE, env.gitops.argocd_version, "manifests/crds/*-crd.yaml"),
        "monitoring.coreos.com": CrdSource(prometheus_crds.MODULE, env.addons.prometheus_crds.version,
                                           f"{prometheus_crds.CRD_DIR}/monitoring.coreos.com_*.yaml"),
        # The chart's version is the operator's (its module tag).
        "external-secrets.io": CrdSource(ESO_MODULE, f"v{env.addons.external_secrets.chart_version}",
                                         "config/crds/bases/external-secrets.io_*.yaml"),
    }


def _module_dir(module: str, version: str) -> Path:
    try:
        return module_dir(module, version)
    except UpstreamError as e:
        raise GitOpsError(f"CRD schemas: {e}") from None


@functools.cache
def _crd_schemas(source: CrdSource, group: str) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    files = sorted(_module_dir(source.module, source.version).glob(source.pattern))
    if not files:
        raise GitOpsError(f"CRD schemas: {source.module}@{source.version} has no {source.pattern}")
    for path in files:
        for crd in load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition" or crd["spec"]["group"] != group:
                continue
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    schemas[(f"{group}/{version['name']}", kind)] = _closed(schema)
    return schemas


def _closed(schema: Any) -> Any:
    """The API server prunes unknown fields silently; we refuse them, so a typo is a finding."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        out["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _crd_validator(obj: RenderedObject, source: CrdSource, group: str) -> Any:
    schema = _crd_schemas(source, group).get((obj.manifest["apiVersion"], obj.kind))
    if schema is None:
        raise LookupError(f"{source.module}@{source.version} has no {obj.kind} in {obj.manifest['apiVersion']}")
    return _validator_for(json.dumps(schema, sort_keys=True))


@functools.cache
def _validator_for(schema_json: str) -> Any:
    return jsonschema.validators.Draft7Validator(json.loads(schema_json))
