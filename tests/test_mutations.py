"""Every static rule passes on the canonical overlay and fails on a manifest broken its way."""

from __future__ import annotations

import pytest

from conformance import controls, fixtures
from conformance.static.mutations import apply
from conformance.static.rules import RULES, load_all

load_all()
CATALOGUE = fixtures.load("mutations.yaml")["mutations"]
# Changes each named rule must catch, and harmless changes every rule must let pass.
MUTATIONS = [m for m in CATALOGUE if not m.get("must_pass")]
HARMLESS = [m for m in CATALOGUE if m.get("must_pass")]


@pytest.mark.parametrize("rule_name", sorted(RULES))
def test_canonical_overlay_passes(dev_bundle, rule_name):
    """The canonical dev overlay has no gap under any rule."""
    assert RULES[rule_name](dev_bundle) == []


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m["id"] for m in MUTATIONS])
def test_mutation_is_caught(dev_bundle, mutation):
    """The rule named by the mutation reports it, naming the object and the gap."""
    gaps = RULES[mutation["rule"]](apply(dev_bundle, mutation["patch"]))
    assert any(mutation["expect"] in gap for gap in gaps), (
        f"{mutation['rule']} did not report {mutation['expect']!r}; it said: {gaps}")


@pytest.mark.parametrize("change", HARMLESS, ids=[m["id"] for m in HARMLESS])
def test_harmless_change_passes_every_rule(dev_bundle, change):
    """A harmless change (a mesh-wide STRICT policy, an extra DENY, a label) fails no rule at all."""
    changed = apply(dev_bundle, change["patch"])
    failing = {name: gaps for name, rule in sorted(RULES.items()) if (gaps := rule(changed))}
    assert failing == {}, f"{change['id']} ({change['why']}) fails: {failing}"


def test_catalogue_entries_are_well_formed():
    """Each entry is either a mutation (a known rule and its expected gap) or a harmless change with a reason."""
    problems = []
    for entry in CATALOGUE:
        if entry.get("must_pass"):
            if not entry.get("why") or "rule" in entry or "expect" in entry:
                problems.append(f"{entry['id']}: a must_pass entry has a why and no rule or expect")
        elif entry.get("rule") not in RULES or not entry.get("expect"):
            problems.append(f"{entry['id']}: names no known rule or has no expect")
    ids = [entry["id"] for entry in CATALOGUE]
    problems += [f"{i}: duplicate id" for i in sorted({i for i in ids if ids.count(i) > 1})]
    assert problems == []
    assert HARMLESS, "the catalogue has no harmless changes, so a false positive would go unnoticed"


def test_every_rule_has_a_mutation():
    """No rule goes unproven: each one is broken on purpose at least once."""
    proven = {m["rule"] for m in MUTATIONS}
    assert sorted(set(RULES) - proven) == []


def test_every_static_control_has_a_rule():
    """Each control with a static tier is checked by at least one rule."""
    checked = {rule.control for rule in RULES.values()}
    static = {c.id for c in controls.CATALOGUE if controls.STATIC in c.tiers}
    assert sorted(static - checked) == []


def test_gaps_name_the_object():
    """A gap starts with the kind and namespace/name of the object it is about."""
    mutation = next(m for m in MUTATIONS if m["id"] == "writable-root")
    from conformance.static.manifests import load_overlay, OVERLAYS  # noqa: I001
    gaps = RULES[mutation["rule"]](apply(load_overlay(OVERLAYS / "dev"), mutation["patch"]))
    assert gaps == ["Deployment cortex-dev/cortex-api container redis-proxy: readOnlyRootFilesystem is false"]


def test_every_harmless_addition_has_a_must_pass_mutation():
    """Each documented harmless addition of the closed world is proven by a must-pass mutation that adds it."""
    from conformance.static import closed_world

    must_pass = {m["id"] for m in HARMLESS}
    missing = [e["id"] for e in closed_world.harmless_entries() if e.get("mutation") not in must_pass]
    assert missing == [], f"harmless additions without a must_pass mutation in fixtures/mutations.yaml: {missing}"
    assert all(e.get("why") for e in closed_world.harmless_entries())
