"""Which faults each shard of the catalogue runs (`--shard K/N`): deterministic, and balanced by cost.

Shards run side by side, one cluster each, so the catalogue takes as long as its slowest shard. What
makes a fault slow is known from the catalogue alone: a rollout of new pods (about 30 s here; a
`restart` fault rolls out twice, on apply and on undo), a change to the cluster outside the overlay,
and the live checks of the controls it expects to fail. Costs are weights, not seconds, so the
split does not move when one run is slower than another.

The split depends only on the faults split and their order: every shard computes the same one, and
the report can tell a shard of another split (conformance.report.shards).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

ROLLOUT = 2  # a rollout of new pods weighs two fault's worth of checks
CLUSTER_STEP = 1
CHECKS = 1


def cost(*, rollouts: int, cluster: bool) -> int:
    return CHECKS + ROLLOUT * rollouts + (CLUSTER_STEP if cluster else 0)


def split(items: Sequence[T], count: int, weight: Callable[[T], int]) -> list[list[T]]:
    """`items` in `count` shards: the heaviest first, each to the lightest shard so far (the lowest-numbered
    among equals), so faults that roll out pods spread evenly before the light ones fill the gaps. Each
    shard keeps catalogue order."""
    if count < 1:
        raise ValueError("a split needs at least one shard")
    position = {id(item): i for i, item in enumerate(items)}
    loads = [0] * count
    shards: list[list[T]] = [[] for _ in range(count)]
    for item in sorted(items, key=lambda it: (-weight(it), position[id(it)])):
        lightest = min(range(count), key=lambda s: (loads[s], len(shards[s]), s))
        shards[lightest].append(item)
        loads[lightest] += weight(item)
    return [sorted(shard, key=lambda it: position[id(it)]) for shard in shards]
