"""A finding: one problem with one field of one object, named so a person can fix it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str
    app: str
    object: str  # "Deployment ml-inference/ml-inference-api"
    path: str  # the file in the tree
    field: str  # dotted path inside the object, "spec.template.spec.containers[0].image"
    check: Literal["schema", "policy"]
    message: str

    def __str__(self) -> str:
        field = self.field or "<root>"
        return f"env {self.env}, app {self.app}, {self.object}, field {field}: {self.message} ({self.path})"


def dotted(parts: object) -> str:
    """``['spec', 'containers', 0, 'image']`` -> ``spec.containers[0].image``."""
    out = ""
    for part in parts:  # type: ignore[attr-defined]
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
