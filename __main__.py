"""The Pulumi program: the stack name picks `environments/<stack>.yaml`; `infra` does the rest.
The one place the program reads its stack's config (where a local stack's cluster is)."""

import pulumi

from environments import load_environment
from infra.local import LocalTarget
from infra.platform import deploy

env = load_environment(pulumi.get_stack())
deploy(env, LocalTarget.from_config() if env.aws is None else None)
