"""HPA: the autoscaler targets the Deployment, can read CPU and can scale up."""

import contextlib
import time

import pytest

from conformance.errors import WaitTimeout
from conformance.live import observe
from conformance.live.traffic import in_parallel, pod_exec
from conformance.plugin import holds
from conformance.static.rules import scaling
from conformance.wait import wait_until

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


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live


def _cpu_utilisation(hpa: dict) -> int | None:
    for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if resource.get("name") == "cpu":
            return (resource.get("current") or {}).get("averageUtilization")
    return None


@pytest.fixture(scope="module")
def scaling_active(live):
    """The HPA has read metrics once (metrics-server needs a scrape or two after pods start)."""
    bound = observe.expectations()["hpa"]["metrics_within_seconds"]
    # The checks below state what is missing; the wait only gives the HPA its chance.
    with contextlib.suppress(WaitTimeout):
        wait_until("HorizontalPodAutoscaler cortex-dev/cortex-api to report ScalingActive and a CPU utilisation",
                   lambda: observe.condition(observe.hpa(live.kube), "ScalingActive").get("status") == "True"
                   and _cpu_utilisation(observe.hpa(live.kube)) is not None, timeout=bound, interval=5)
    return observe.hpa(live.kube)


@live
@pytest.mark.control("HPA-01")
def test_hpa_scaling_active(scaling_active, evidence):
    """HPA-01: the HPA targets the Deployment and reports ScalingActive."""
    condition = observe.condition(scaling_active, "ScalingActive")
    evidence.append({"command": "kubectl get hpa cortex-api -n cortex-dev -o json",
                     "note": f"ScalingActive={condition.get('status')} ({condition.get('reason')}: "
                             f"{condition.get('message', '')[:160]})"})
    if condition.get("status") != "True":
        pytest.fail(f"HorizontalPodAutoscaler cortex-dev/cortex-api: ScalingActive is {condition.get('status')} "
                    f"({condition.get('reason')}: {condition.get('message')})", pytrace=False)


@live
@pytest.mark.control("HPA-02")
def test_hpa_reads_cpu(scaling_active, evidence):
    """HPA-02: the HPA computes CPU utilisation, so every container (sidecars included) requests CPU."""
    utilisation = _cpu_utilisation(scaling_active)
    evidence.append({"command": "kubectl get hpa cortex-api -n cortex-dev -o json",
                     "note": f"current CPU utilisation {utilisation}%"})
    if utilisation is None:
        able = observe.condition(scaling_active, "AbleToScale")
        pytest.fail("HorizontalPodAutoscaler cortex-dev/cortex-api: CPU utilisation is <unknown> "
                    f"({able.get('message', 'no condition message')})", pytrace=False)


@live
@pytest.mark.control("HPA-03")
def test_load_scales_up(live, scaling_active, evidence):
    """HPA-03: CPU load on the pods raises the replica count within the bound of live.yaml."""
    spec = observe.expectations()["hpa"]
    start = int(scaling_active["status"].get("currentReplicas", 0))
    pods = [p["metadata"]["name"] for p in observe.api_pods(live.kube)]

    def burn(seconds: int) -> None:
        in_parallel([lambda pod=pod: pod_exec(live.kube, "cortex-dev", pod, ["/standin", "ctl", "burn", "--seconds",
                                                                            str(seconds)], container="cortex-api")
                     for pod in pods])

    began = time.monotonic()
    burn(spec["burn_seconds"])
    try:
        wait_until(f"HorizontalPodAutoscaler cortex-dev/cortex-api to scale above {start} replicas under load",
                   lambda: int(observe.hpa(live.kube)["status"].get("desiredReplicas", 0)) > start,
                   timeout=spec["scale_up_within_seconds"], interval=5)
    except WaitTimeout as exc:
        pytest.fail(f"HorizontalPodAutoscaler cortex-dev/cortex-api: {exc}", pytrace=False)
    finally:
        burn(0)
    elapsed = round(time.monotonic() - began)
    status = observe.hpa(live.kube)["status"]
    evidence.append({"command": "kubectl exec <each cortex-api pod> -c cortex-api -- /standin ctl burn --seconds N",
                     "note": f"desiredReplicas {start} -> {status.get('desiredReplicas')} after {elapsed}s "
                             f"(bound {spec['scale_up_within_seconds']}s)"})
