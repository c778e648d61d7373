"""RDS instance-class sizing facts: memory and the default PostgreSQL max_connections."""

from __future__ import annotations

import re

_T_CLASS_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_GIB_PER_VCPU = {"m": 4, "r": 8, "x": 16, "z": 8}


def instance_memory_gib(instance_class: str) -> float | None:
    """Memory of an RDS instance class such as ``t4g.micro`` or ``m7g.large``; None when unknown."""
    family, _, size = instance_class.partition(".")
    if family.startswith("t"):
        return _T_CLASS_GIB.get(size)
    per_vcpu = _GIB_PER_VCPU.get(family[0])
    match = re.fullmatch(r"(\d*)xlarge|large", size)
    if per_vcpu is None or match is None:
        return None
    vcpus = 2 if size == "large" else 4 * int(match.group(1) or 1)
    return float(vcpus * per_vcpu)


def max_connections(instance_class: str) -> int | None:
    """RDS PostgreSQL default ``max_connections``: LEAST(DBInstanceClassMemory / 9531392, 5000)."""
    memory = instance_memory_gib(instance_class)
    return None if memory is None else min(int(memory * 1024**3 / 9531392), 5000)
