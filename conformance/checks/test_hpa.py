"""HPA: the autoscaler targets the Deployment, can read CPU and can scale up."""

import pytest

from conformance.plugin import holds
from conformance.rules import scaling

static = pytest.mark.static


@static
@pytest.mark.control("HPA-01")
def test_hpa_targets_deployment_with_room(bundle):
    """HPA-01: an HPA targets each Deployment with minReplicas >= 2 and maxReplicas above it."""
    holds(scaling.hpa_targets_deployment_with_room(bundle))


@static
@pytest.mark.control("HPA-02")
def test_cpu_requests_for_utilisation(bundle):
    """HPA-02: every container of a CPU-scaled workload requests CPU."""
    holds(scaling.cpu_requests_for_utilisation(bundle))


@static
@pytest.mark.control("HPA-03")
def test_scale_up_possible(bundle):
    """HPA-03: the scale-up behaviour can add pods and the CPU target is reachable under the limits."""
    holds(scaling.scale_up_possible(bundle))
