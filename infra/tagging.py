"""Tagging: one AWS provider per stack whose default tags reach every taggable resource.

Default tags on the provider (rather than a `tags=` on each resource) also reach what
pulumi-eks creates inside its multi-language component, which a transform in this
process cannot see. Every AWS resource of the program is created through this provider;
the infra tests assert that.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from environments import Environment

TOKEN = "mlops:infra:Tagging"


def base_tags(env: Environment) -> dict[str, str]:
    """The tags every resource of the environment carries (env, project, owner, cost centre)."""
    tags = {
        "env": env.name,
        "project": env.tags.project,
        "owner": env.tags.owner,
        "cost-centre": env.tags.cost_centre,
        "managed-by": "pulumi",
    }
    # Extra tags may add keys but never hide the four the cost reports group by.
    return {**env.tags.extra, **tags}


@dataclass(frozen=True)
class TaggingArgs:
    env_name: str
    region: str
    tags: dict[str, str]
    account_id: str | None = None

    @classmethod
    def from_env(cls, env: Environment) -> TaggingArgs:
        assert env.aws is not None
        return cls(env_name=env.name, region=env.aws.region, tags=base_tags(env), account_id=env.aws.account_id)


class Tagging(pulumi.ComponentResource):
    """The stack's AWS provider: region, default tags, and the account it may touch."""

    provider: aws.Provider

    def __init__(self, name: str, args: TaggingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        self.tags = dict(args.tags)
        self.provider = aws.Provider(
            f"{name}-aws",
            region=args.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=self.tags),
            # A stack pointed at the wrong account fails before touching it.
            allowed_account_ids=[args.account_id] if args.account_id else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"tags": self.tags})
