"""CLOSED: each governed namespace holds what fixtures/expectations/closed_world.yaml names and nothing else.

The matching is conformance.static.closed_world's; each rule reports one sort of its findings, so that an
extra object, an extra field and a changed value fail three separate checks.
"""

from __future__ import annotations

from conformance.static import closed_world
from conformance.static.manifests import Bundle
from conformance.static.rules import rule


def _of(bundle: Bundle, sort: str) -> list[str]:
    return [f.text for f in closed_world.findings(bundle) if f.sort == sort]


# None of these has "nothing to check": every input holds objects, and an input without any governed
# namespace holds no namespace to describe.
@rule("CLOSED-01")
def objects_named(bundle: Bundle) -> list[str]:
    """Every object is one the expectations name for its namespace, or a documented harmless addition."""
    return _of(bundle, "object")


@rule("CLOSED-02")
def fields_named(bundle: Bundle) -> list[str]:
    """Named objects use only the fields, labels and annotations their expectations name."""
    return _of(bundle, "field")


@rule("CLOSED-03")
def values_expected(bundle: Bundle) -> list[str]:
    """Where the expectations name a value (sampling, retries, token locations, merged metrics, mesh capture,
    injection), the manifests hold that value."""
    return _of(bundle, "value")
