"""PROBE: liveness and readiness on every container, on declared ports, distinct and sane."""

import pytest

from conformance.plugin import holds
from conformance.rules import probes

static = pytest.mark.static


@static
@pytest.mark.control("PROBE-01")
def test_liveness_and_readiness_present(bundle):
    """PROBE-01: every container has a livenessProbe and a readinessProbe."""
    holds(probes.liveness_and_readiness_present(bundle))


@static
@pytest.mark.control("PROBE-02")
def test_probes_on_declared_ports(bundle):
    """PROBE-02: every probe targets a port its container declares."""
    holds(probes.probes_on_declared_ports(bundle))


@static
@pytest.mark.control("PROBE-03")
def test_readiness_distinct_from_liveness(bundle):
    """PROBE-03: readiness differs from liveness and reacts within ten seconds."""
    holds(probes.readiness_distinct_from_liveness(bundle))


@static
@pytest.mark.control("PROBE-04")
def test_liveness_timing_sane(bundle):
    """PROBE-04: liveness tolerates a blip, timeouts fit their periods, slow starters have a startup probe."""
    holds(probes.liveness_timing_sane(bundle))
