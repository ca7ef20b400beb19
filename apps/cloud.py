"""What a cloud stack created that the GitOps tree must name: the GitOps Bridge's metadata.

`pulumi up` exports it as the stack output `gitops_metadata` and its publish step renders the
tree with it; `mlops argocd render <env> --stack-outputs outputs.json` reads the same output, so
what a reviewer renders is byte for byte what the stack publishes.

    >>> CloudMetadata.model_validate({"registry": "1.dkr.ecr.ap-southeast-2.amazonaws.com/ml/prod"}).role_arn("x")
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from environments.model import ImageDigest

# The stack output that carries it (infra exports it, argocd reads it).
STACK_OUTPUT = "gitops_metadata"


class CloudMetadataError(ValueError):
    """Stack outputs that do not hold usable metadata; the message names the file and field."""


class CloudMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Prefix of the stack's ECR repositories (`local`: the local registry's, set by the harness).
    registry: str = ""
    # Image name -> the digest `mlops images push` reported (the stack's config mlops:imageDigests):
    # the tree names images by digest, what was pushed and nothing else.
    image_digests: dict[str, ImageDigest] = {}
    # App or add-on name -> the IAM role its service account assumes.
    role_arns: dict[str, str] = {}
    # What the add-ons' values name (the cluster's name and region are the environment's).
    vpc_id: str | None = None
    # The EFS file system behind the shared-volume StorageClass.
    file_system_id: str | None = None

    def role_arn(self, name: str) -> str | None:
        return self.role_arns.get(name)

    def require(self, field: str, *, needed_by: str) -> str:
        value = getattr(self, field)
        if not value:
            raise CloudMetadataError(
                f"{needed_by} needs the stack's {field}: render with the stack's outputs "
                f"(mlops argocd render <env> --stack-outputs FILE, FILE from `pulumi stack output --json`)"
            )
        return str(value)

    @classmethod
    def from_stack_outputs(cls, path: Path) -> CloudMetadata:
        """`pulumi stack output --json` of a stack (its `gitops_metadata` output)."""
        try:
            outputs = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise CloudMetadataError(f"{path}: cannot read stack outputs: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise CloudMetadataError(f"{path}: not JSON (line {e.lineno}): expected `pulumi stack output --json`") from None
        if not isinstance(outputs, dict) or STACK_OUTPUT not in outputs:
            raise CloudMetadataError(f"{path}: no {STACK_OUTPUT!r} output; is it `pulumi stack output --json` "
                                     "of a stack of this project?")
        try:
            return cls.model_validate(outputs[STACK_OUTPUT])
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise CloudMetadataError(f"{path}: {STACK_OUTPUT}.{where}: {err['msg']}") from None
