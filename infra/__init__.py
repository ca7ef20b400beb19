"""Infra: the Pulumi program as components (network, cluster, node groups, identity,
registries and storage, GitOps bootstrap, guardrails, tagging) and its offline plan.

Only this package imports `pulumi*`; `infra.cli` imports it lazily so the CLI works
without the infra extra installed.
"""
