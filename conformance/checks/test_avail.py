"""AVAIL: drainable PDB, spread, surge-first rollouts, Services that reach their pods.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import json

import pytest

from conformance import fixtures
from conformance.errors import WaitTimeout
from conformance.live import judge, observe
from conformance.live.traffic import in_parallel
from conformance.plugin import holds
from conformance.static.rules import availability
from conformance.wait import wait_until

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


def _evict(live, pod: str) -> int:
    """POST the pod's eviction (what `kubectl drain` does): 201 granted, 429 refused by a budget."""
    namespace = fixtures.workload().namespace
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": namespace}})
    result = live.kube.run("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
                           input=body, check=False, timeout=30)
    if result.returncode == 0:
        return 201
    text = result.stderr
    for status, words in ((429, ("TooManyRequests", "429", "disruption budget")), (404, ("NotFound",)),
                          (403, ("Forbidden",)), (500, ("InternalError",))):
        if any(w in text for w in words):
            return status
    return 0


@live
@pytest.mark.control("AVAIL-01")
def test_budget_refuses_evictions_beyond_it(live, ready_api_pods, evidence):
    """AVAIL-01: evicting every Ready cortex-api pod at once, the API grants exactly the budget and refuses the rest."""
    spec = fixtures.workload()
    expected = observe.expectations()["availability"]
    pdb = spec.ref("PodDisruptionBudget")
    names = [p["metadata"]["name"] for p in ready_api_pods]
    budgets = live.kube.json("get", "pdb", "-n", spec.namespace)["items"]
    for budget in budgets:
        # A budget the disruption controller has not computed yet refuses everything for that reason alone.
        wait_until(f"PodDisruptionBudget {spec.namespace}/{budget['metadata']['name']} to be computed",
                   lambda b=budget: live.kube.json("get", "pdb", b["metadata"]["name"], "-n", spec.namespace)
                   .get("status", {}).get("observedGeneration") == b["metadata"]["generation"], timeout=30)
    answers = dict(zip(names, in_parallel([lambda n=n: _evict(live, n) for n in names]), strict=True))
    evidence.append({"command": f"POST /api/v1/namespaces/{spec.namespace}/pods/<each of {len(names)} pods>/eviction "
                                "(all at once)",
                     "note": ", ".join(f"{n}: {s or 'error'}" for n, s in sorted(answers.items()))
                     + f"; budgets in the namespace: {', '.join(b['metadata']['name'] for b in budgets) or 'none'}"})
    gaps = judge.eviction_gaps(pdb, answers, expected["evictions_granted_at_once"])
    try:
        wait_until(f"{spec.ref('Deployment')} to have {len(names)} Ready pods again after the evictions",
                   lambda: sum(observe.is_ready(p) for p in observe.api_pods(live.kube)) >= len(names),
                   timeout=expected["recover_within_seconds"], interval=2)
    except WaitTimeout as exc:
        gaps.append(f"{spec.ref('Deployment')}: {exc}")
    holds(gaps)
