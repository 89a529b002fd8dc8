"""AVAIL: drainable PDB, spread, surge-first rollouts, Services that reach their pods.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""


import pytest

from conformance import fixtures
from conformance.live.evidence import observe
from conformance.plugin import holds
from conformance.static.rules import availability

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


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live


@live
@pytest.mark.control("AVAIL-04")
def test_endpoints_match_ready_pods(live, evidence):
    """AVAIL-04: the Service's ready endpoints are exactly the Ready cortex-api pods."""
    service = fixtures.workload().ref("Service")
    ready = {p["status"]["podIP"] for p in observe.api_pods(live.kube) if observe.is_ready(p)}
    endpoints = observe.endpoint_addresses(live.kube)
    evidence.append({"command": f"kubectl get endpointslices -n {fixtures.workload().namespace} "
                                f"-l kubernetes.io/service-name={fixtures.workload().name}",
                     "note": f"{len(endpoints)} ready endpoint(s), {len(ready)} Ready pod(s)"})
    gaps = [f"{service}: Ready pod {ip} is not an endpoint" for ip in sorted(ready - endpoints)]
    gaps += [f"{service}: endpoint {ip} is not a Ready cortex-api pod" for ip in sorted(endpoints - ready)]
    if not ready:
        gaps.append(f"{fixtures.workload().ref('Deployment')}: no Ready pod, so the Service has nothing to select")
    holds(gaps)


@live
@pytest.mark.control("AVAIL-01")
def test_budget_refuses_evictions_beyond_it(experiments, evidence):
    """AVAIL-01: evicting every Ready cortex-api pod at once, the API grants exactly the budget and refuses the rest."""
    record = experiments["eviction"]
    evidence += record.evidence
    holds(record.gaps)
