"""Static rules: pure functions from a rendered bundle to its gaps, one requirement each.

A gap is one line that names the object, the field and what is wrong, e.g.
`Deployment cortex-dev/cortex-api container redis-proxy: readOnlyRootFilesystem is false`.
Each pytest check calls exactly one rule; the unit tests call the same rule on a manifest broken
in exactly its way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.static.manifests import Bundle

RuleFunc = Callable[[Bundle], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    control: str
    func: RuleFunc

    def __call__(self, bundle: Bundle) -> list[str]:
        return self.func(bundle)


RULES: dict[str, Rule] = {}


def rule(control: str) -> Callable[[RuleFunc], Rule]:
    def register(func: RuleFunc) -> Rule:
        name = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"
        registered = Rule(name, control, func)
        RULES[name] = registered
        return registered
    return register


def load_all() -> dict[str, Rule]:
    """Import every rule module so that RULES is complete."""
    from conformance.static.rules import (  # noqa: F401
        availability,
        gateway,
        health,
        jwt,
        mtls,
        network,
        podsecurity,
        scaling,
        validity,
        vault,
    )
    return RULES
