"""HPA: the autoscaler targets the Deployment, can read CPU and can scale up.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import contextlib

import pytest

from conformance import fixtures
from conformance.errors import WaitTimeout
from conformance.live.evidence import experiments as lab
from conformance.live.evidence import judge, observe
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


def _cannot_compute(live) -> str | None:
    """What makes waiting for the HPA's first reading pointless, because no wait changes it: the HPA does
    not target the expected Deployment, its target cannot be read (FailedGetScale), a container has no
    CPU request (the HPA says so and keeps saying so), or the metrics API is down."""
    hpa = observe.hpa(live.kube)
    name = fixtures.workload().ref("HorizontalPodAutoscaler")
    wrong_target = [g for g in judge.replica_gaps(name, hpa.get("spec") or {}, HPA, fixtures.workload().name)
                    if "scaleTargetRef" in g]
    if wrong_target:
        return wrong_target[0]
    condition = observe.condition(hpa, "ScalingActive")
    if condition.get("status") == "False" and (condition.get("reason") == "FailedGetScale"
                                               or "missing request" in (condition.get("message") or "")):
        return condition["message"]
    return lab.metrics_blocker(live)


@pytest.fixture(scope="module")
def scaling_active(live):
    """The HPA has read metrics once (metrics-server needs a scrape or two after pods start)."""
    name = fixtures.workload().ref("HorizontalPodAutoscaler")
    # The checks below state what is missing; the wait only gives the HPA its chance, and ends at once
    # when the metrics API itself is down.
    with contextlib.suppress(WaitTimeout):
        wait_until(f"{name} to report ScalingActive and a CPU utilisation",
                   lambda: observe.condition(observe.hpa(live.kube), "ScalingActive").get("status") == "True"
                   and lab.cpu_utilisation(observe.hpa(live.kube)) is not None,
                   timeout=HPA["metrics_within_seconds"], interval=5, fail=lambda: _cannot_compute(live))
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
    blocker = lab.metrics_blocker(live)
    if condition.get("status") != "True":
        gaps.append(f"{name}: ScalingActive is {condition.get('status')} ({condition.get('reason')}: "
                    f"{condition.get('message')})" + (f"; {blocker}" if blocker else ""))
    elif blocker:
        # The condition is the HPA's last success; with the metrics API gone it cannot read anything now.
        gaps.append(f"{name}: it cannot read metrics: {blocker}")
    holds(gaps)


@live
@pytest.mark.control("HPA-02")
def test_hpa_reads_cpu(live, scaling_active, evidence):
    """HPA-02: the HPA computes CPU utilisation, so every container (sidecars included) requests CPU."""
    utilisation = lab.cpu_utilisation(scaling_active)
    evidence.append({"command": f"kubectl get hpa -n {fixtures.workload().namespace} -o json",
                     "note": f"current CPU utilisation {utilisation}%"})
    blocker = lab.metrics_blocker(live)
    if utilisation is not None and blocker:
        pytest.fail(f"{fixtures.workload().ref('HorizontalPodAutoscaler')}: the CPU utilisation {utilisation}% is "
                    f"the last one read; none can be read now: {blocker}", pytrace=False)
    if utilisation is None:
        able = observe.condition(scaling_active, "ScalingActive")
        pytest.fail(f"{fixtures.workload().ref('HorizontalPodAutoscaler')}: CPU utilisation is <unknown> "
                    f"({able.get('message', 'no condition message')})" + (f"; {blocker}" if blocker else ""),
                    pytrace=False)


@live
@pytest.mark.control("HPA-03")
def test_load_scales_up(experiments, evidence):
    """HPA-03: CPU load on the pods raises the replica count above the minimum, within the bound and the maximum."""
    record = experiments["load"]
    evidence += record.evidence
    holds(record.gaps)
