"""Static rules: pure functions from a rendered bundle to its gaps, one requirement each.

A gap is one line that names the object, the field and what is wrong, e.g.
`Deployment cortex-dev/cortex-api container redis-proxy: readOnlyRootFilesystem is false`.
Each pytest check calls exactly one rule; the unit tests call the same rule on a manifest broken
in exactly its way.

A rule that found no gap but had nothing to look at (no workload, no HorizontalPodAutoscaler...)
has not passed: it raises NothingToCheck, which the plugin reports as a skip with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.static.manifests import Bundle

RuleFunc = Callable[[Bundle], list[str]]


class NothingToCheck(Exception):
    """A rule found no gap because the bundle holds nothing it judges; the check must not pass."""


@dataclass(frozen=True)
class Needs:
    """Something a rule judges (`what`, as a message names it) and whether a bundle holds any of it."""

    what: str
    present: Callable[[Bundle], bool]


WORKLOADS = Needs("workload (an object with a pod template)", lambda bundle: bool(bundle.pods))


def kinds(*names: str) -> Needs:
    return Needs(" or ".join(names), lambda bundle: bool(bundle.of_kind(*names)))


@dataclass(frozen=True)
class Rule:
    name: str
    control: str
    func: RuleFunc
    needs: tuple[Needs, ...] = ()

    def __call__(self, bundle: Bundle) -> list[str]:
        gaps = self.func(bundle)
        # Gaps are never hidden; only a clean result over nothing becomes NothingToCheck.
        if not gaps and self.needs and not any(need.present(bundle) for need in self.needs):
            raise NothingToCheck(f"no {' and no '.join(need.what for need in self.needs)} in the manifests")
        return gaps


RULES: dict[str, Rule] = {}


def rule(control: str, *needs: Needs) -> Callable[[RuleFunc], Rule]:
    """Register a rule of `control`; with `needs`, a bundle holding none of them has nothing to check."""
    def register(func: RuleFunc) -> Rule:
        name = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"
        registered = Rule(name, control, func, needs)
        RULES[name] = registered
        return registered
    return register


def load_all() -> dict[str, Rule]:
    """Import every rule module so that RULES is complete."""
    from conformance.static.rules import (  # noqa: F401
        availability,
        closed,
        currency,
        gateway,
        health,
        jwt,
        mtls,
        network,
        podsecurity,
        scaling,
        telemetry,
        validity,
        vault,
        webhook,
    )
    return RULES
