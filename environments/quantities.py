"""Kubernetes resource quantities, parsed in one place: the environment model checks them with
these, and the workloads, quotas and harness compute with the same functions.

    >>> cpu_millis("250m"), cpu_millis("1.5"), memory_bytes("512Mi"), format_memory(2**30)
    (250, 1500, 536870912, '1Gi')
"""

from __future__ import annotations

import re

_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")
_MEM_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MEM = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(k|M|G|Ki|Mi|Gi|Ti)?$")


def cpu_millis(quantity: str) -> int:
    match = _CPU.match(quantity)
    if not match:
        raise ValueError(f"cpu quantity {quantity!r}: expected cores ('2', '0.5') or millicores ('250m')")
    value = float(match.group(1))
    return round(value if match.group(2) else value * 1000)


def memory_bytes(quantity: str) -> int:
    match = _MEM.match(quantity)
    if not match:
        # `m` is milli in Kubernetes (512m is half a byte): always a typo for Mi here.
        raise ValueError(f"memory quantity {quantity!r}: expected a number with k/M/G/Ki/Mi/Gi/Ti ('512Mi')")
    return round(float(match.group(1)) * _MEM_UNITS[match.group(2) or ""])


def format_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_memory(size: int) -> str:
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        if size % _MEM_UNITS[unit] == 0:
            return f"{size // _MEM_UNITS[unit]}{unit}"
    return str(size)


def checked_cpu(quantity: str) -> str:
    cpu_millis(quantity)
    return quantity


def checked_memory(quantity: str) -> str:
    memory_bytes(quantity)
    return quantity
