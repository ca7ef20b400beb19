"""The Pulumi program: the stack name picks `environments/<stack>.yaml`; `infra` does the rest."""

import pulumi

from environments import load_environment
from infra.platform import deploy

deploy(load_environment(pulumi.get_stack()))
