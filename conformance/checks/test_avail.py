"""AVAIL: drainable PDB, spread, surge-first rollouts, Services that reach their pods."""

import pytest

from conformance.plugin import holds
from conformance.rules import availability

static = pytest.mark.static


@static
@pytest.mark.control("AVAIL-01")
def test_pdb_allows_drain(bundle):
    """AVAIL-01: one PDB selects the pods and still allows an eviction at the HPA minimum."""
    holds(availability.pdb_allows_drain(bundle))


@static
@pytest.mark.control("AVAIL-02")
def test_pods_spread(bundle):
    """AVAIL-02: pods spread over zones and hosts with selectors that match them."""
    holds(availability.pods_spread(bundle))


@static
@pytest.mark.control("AVAIL-03")
def test_rollout_keeps_capacity(bundle):
    """AVAIL-03: rolling updates surge first and never make a serving pod unavailable."""
    holds(availability.rollout_keeps_capacity(bundle))


@static
@pytest.mark.control("AVAIL-04")
def test_service_selects_pods(bundle):
    """AVAIL-04: every Service selects pods, on ports they declare, with explicit protocols."""
    holds(availability.service_selects_pods(bundle))
