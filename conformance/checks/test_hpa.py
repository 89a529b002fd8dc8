"""HPA: the autoscaler targets the Deployment, can read CPU and can scale up.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import contextlib
import time

import pytest

from conformance import fixtures
from conformance.errors import WaitTimeout
from conformance.live import diagnose, judge, observe
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
HPA = observe.expectations()["hpa"]


def _cpu_utilisation(hpa: dict) -> int | None:
    for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if resource.get("name") == "cpu":
            return (resource.get("current") or {}).get("averageUtilization")
    return None


def _metrics_blocker(live) -> str | None:
    """An unavailable metrics API, found in seconds, instead of waiting out the whole bound for it."""
    found = [b for b in diagnose.blockers(live.kube) if "metrics" in b]
    return "; ".join(found) or None


@pytest.fixture(scope="module")
def scaling_active(live):
    """The HPA has read metrics once (metrics-server needs a scrape or two after pods start)."""
    name = fixtures.workload().ref("HorizontalPodAutoscaler")
    # The checks below state what is missing; the wait only gives the HPA its chance, and ends at once
    # when the metrics API itself is down.
    with contextlib.suppress(WaitTimeout):
        wait_until(f"{name} to report ScalingActive and a CPU utilisation",
                   lambda: observe.condition(observe.hpa(live.kube), "ScalingActive").get("status") == "True"
                   and _cpu_utilisation(observe.hpa(live.kube)) is not None,
                   timeout=HPA["metrics_within_seconds"], interval=5, fail=lambda: _metrics_blocker(live))
    return observe.hpa(live.kube)


@live
@pytest.mark.control("HPA-01")
def test_hpa_scaling_active(live, scaling_active, evidence):
    """HPA-01: the HPA targets the Deployment with the expected bounds and reports ScalingActive."""
    name = fixtures.workload().ref("HorizontalPodAutoscaler")
    condition = observe.condition(scaling_active, "ScalingActive")
    evidence.append({"command": f"kubectl get hpa -n {fixtures.workload().namespace} -o json",
                     "note": f"ScalingActive={condition.get('status')} ({condition.get('reason')}: "
                             f"{condition.get('message', '')[:160]})"})
    gaps = judge.replica_gaps(name, scaling_active.get("spec") or {}, HPA, fixtures.workload().name)
    if condition.get("status") != "True":
        blocker = _metrics_blocker(live)
        gaps.append(f"{name}: ScalingActive is {condition.get('status')} ({condition.get('reason')}: "
                    f"{condition.get('message')})" + (f"; {blocker}" if blocker else ""))
    holds(gaps)


@live
@pytest.mark.control("HPA-02")
def test_hpa_reads_cpu(live, scaling_active, evidence):
    """HPA-02: the HPA computes CPU utilisation, so every container (sidecars included) requests CPU."""
    utilisation = _cpu_utilisation(scaling_active)
    evidence.append({"command": f"kubectl get hpa -n {fixtures.workload().namespace} -o json",
                     "note": f"current CPU utilisation {utilisation}%"})
    if utilisation is None:
        able = observe.condition(scaling_active, "ScalingActive")
        blocker = _metrics_blocker(live)
        pytest.fail(f"{fixtures.workload().ref('HorizontalPodAutoscaler')}: CPU utilisation is <unknown> "
                    f"({able.get('message', 'no condition message')})" + (f"; {blocker}" if blocker else ""),
                    pytrace=False)


@live
@pytest.mark.control("HPA-03")
def test_load_scales_up(live, scaling_active, ready_api_pods, evidence):
    """HPA-03: CPU load on the pods raises the replica count above the minimum, within the bound and the maximum."""
    spec = fixtures.workload()
    name = spec.ref("HorizontalPodAutoscaler")
    start, peak = HPA["min_replicas"], {"utilisation": 0, "desired": 0}
    pods = [p["metadata"]["name"] for p in ready_api_pods]

    def burn(seconds: int) -> list:
        return in_parallel([lambda pod=pod: pod_exec(live.kube, spec.namespace, pod, ["/standin", "ctl", "burn",
                                                                                     "--seconds", str(seconds)],
                                                     container=spec.name) for pod in pods])

    def scaled() -> bool:
        status = observe.hpa(live.kube).get("status") or {}
        peak["utilisation"] = max(peak["utilisation"], _cpu_utilisation({"status": status}) or 0)
        peak["desired"] = max(peak["desired"], int(status.get("desiredReplicas", 0)))
        return peak["desired"] > start and peak["utilisation"] > HPA["target_cpu_utilization"]

    began = time.monotonic()
    started = burn(HPA["burn_seconds"])
    failed = [f"Pod {spec.namespace}/{pod}: the load did not start ({r.stderr.strip()[-120:]})"
              for pod, r in zip(pods, started, strict=True) if r.returncode != 0]
    if failed:
        burn(0)
        holds(failed)
    try:
        wait_until(f"{name} to see the load (CPU above {HPA['target_cpu_utilization']}%) and scale above {start}",
                   scaled, timeout=HPA["scale_up_within_seconds"], interval=5, fail=lambda: _metrics_blocker(live))
    except WaitTimeout as exc:
        pytest.fail(f"{name}: {exc} (peak CPU {peak['utilisation']}%, peak desiredReplicas {peak['desired']})",
                    pytrace=False)
    finally:
        burn(0)
    evidence.append({"command": f"kubectl exec <each of {len(pods)} cortex-api pods> -c {spec.name} -- "
                                "/standin ctl burn --seconds N",
                     "note": f"CPU up to {peak['utilisation']}%, desiredReplicas {start} -> {peak['desired']} after "
                             f"{round(time.monotonic() - began)}s (bound {HPA['scale_up_within_seconds']}s, "
                             f"max {HPA['max_replicas']})"})
    if peak["desired"] > HPA["max_replicas"]:
        pytest.fail(f"{name}: desiredReplicas reached {peak['desired']}, above the maximum {HPA['max_replicas']}",
                    pytrace=False)
