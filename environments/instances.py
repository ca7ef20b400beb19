"""What each EC2 instance type offers, so node groups can be checked and simulated nodes shaped.

Allocatable is capacity minus the kubelet reservation of the EKS AMIs: what the scheduler can
place, so the environment model checks fits against it and the simulated nodes advertise it.
"""

from __future__ import annotations

from typing import NamedTuple


class InstanceShape(NamedTuple):
    cpu: int
    memory_gib: int
    gpus: int = 0
    max_pods: int = 110

    @property
    def allocatable_cpu_millis(self) -> int:
        """EKS reserves 6% of the 1st core, 1% of the 2nd, 0.5% of the 3rd-4th, 0.25% of the rest."""
        tiers = [(1, 60.0), (1, 10.0), (2, 5.0), (max(self.cpu - 4, 0), 2.5)]
        reserved, left = 0.0, self.cpu
        for count, millis_per_core in tiers:
            used = min(left, count)
            reserved += used * millis_per_core
            left -= used
        return self.cpu * 1000 - int(reserved)

    @property
    def allocatable_memory_mib(self) -> int:
        """EKS reserves 255 MiB + 11 MiB per pod, and evicts below 100 MiB."""
        return self.memory_gib * 1024 - (255 + 11 * self.max_pods + 100)


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
