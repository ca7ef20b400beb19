"""What each EC2 instance type offers, so node groups can be checked and simulated nodes shaped.

Allocatable is a little below capacity on a real node; the simulated nodes use these figures
minus the kubelet reservation the harness applies.
"""

from __future__ import annotations

from typing import NamedTuple


class InstanceShape(NamedTuple):
    cpu: int
    memory_gib: int
    gpus: int = 0
    max_pods: int = 110


INSTANCE_SHAPES: dict[str, InstanceShape] = {
    "t3.medium": InstanceShape(2, 4, max_pods=17),
    "t3.large": InstanceShape(2, 8, max_pods=35),
    "t3a.medium": InstanceShape(2, 4, max_pods=17),
    "m5.large": InstanceShape(2, 8, max_pods=29),
    "m5.xlarge": InstanceShape(4, 16, max_pods=58),
    "m5.2xlarge": InstanceShape(8, 32, max_pods=58),
    "m6i.xlarge": InstanceShape(4, 16, max_pods=58),
    "m6i.2xlarge": InstanceShape(8, 32, max_pods=58),
    "c6i.2xlarge": InstanceShape(8, 16, max_pods=58),
    "g4dn.xlarge": InstanceShape(4, 16, gpus=1, max_pods=29),
    "g5.xlarge": InstanceShape(4, 16, gpus=1, max_pods=58),
    "g5.2xlarge": InstanceShape(8, 32, gpus=1, max_pods=58),
    "g5.12xlarge": InstanceShape(48, 192, gpus=4, max_pods=234),
    "p3.2xlarge": InstanceShape(8, 61, gpus=1, max_pods=58),
}
