"""AVAIL: drainable PDB, spread, surge-first rollouts, Services that reach their pods."""

import threading

import pytest

from conformance.live import observe
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
    ready = {p["status"]["podIP"] for p in observe.api_pods(live.kube) if observe.is_ready(p)}
    endpoints = observe.endpoint_addresses(live.kube)
    evidence.append({"command": "kubectl get endpointslices -n cortex-dev -l kubernetes.io/service-name=cortex-api",
                     "note": f"{len(endpoints)} ready endpoint(s), {len(ready)} Ready pod(s)"})
    gaps = [f"Service cortex-dev/cortex-api: Ready pod {ip} is not an endpoint" for ip in sorted(ready - endpoints)]
    gaps += [f"Service cortex-dev/cortex-api: endpoint {ip} is not a Ready cortex-api pod"
             for ip in sorted(endpoints - ready)]
    if not ready:
        gaps.append("Deployment cortex-dev/cortex-api: no Ready pod")
    holds(gaps)


@live
@pytest.mark.control("AVAIL-01")
def test_drain_respects_pdb(live, evidence):
    """AVAIL-01: draining a node that runs cortex-api evicts through the PDB and never drops below capacity."""
    if live.options.nodes < 3:
        pytest.skip("--nodes 1: a single node has nowhere to drain its pods to")
    bound = observe.expectations()["drain"]["within_seconds"]
    pods = observe.api_pods(live.kube)
    floor = len(pods) - 1  # the PDB allows one pod unavailable at a time
    node = pods[0]["spec"]["nodeName"]
    lowest = [len(pods)]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(1):
            lowest[0] = min(lowest[0], sum(observe.is_ready(p) for p in observe.api_pods(live.kube)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # Only the workload's pods: the suite's own client pods are bare Pods, which a drain refuses
        # to delete without --force, and they are not what the PDB protects.
        result = live.kube.run("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                               f"--pod-selector={observe.API_SELECTOR}", f"--timeout={bound}s",
                               check=False, timeout=bound + 60)
    finally:
        stop.set()
        watcher.join()
        live.kube.run("uncordon", node, check=False)
    evidence.append({"command": f"kubectl drain {node} --ignore-daemonsets --delete-emptydir-data "
                                f"--pod-selector={observe.API_SELECTOR} --timeout={bound}s",
                     "exit_code": result.returncode,
                     "note": f"fewest Ready cortex-api pods during the drain: {lowest[0]} (floor {floor})"})
    gaps = []
    if result.returncode != 0:
        gaps.append(f"Node {node}: the drain did not finish within {bound}s: {result.stderr.strip()[-200:]}")
    if lowest[0] < floor:
        gaps.append(f"PodDisruptionBudget cortex-dev/cortex-api: only {lowest[0]} cortex-api pod(s) were Ready during "
                    f"the drain, below {floor}")
    holds(gaps)
