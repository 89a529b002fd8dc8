"""PROBE: liveness and readiness on every container, on declared ports, distinct and sane.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""


import pytest

from conformance import fixtures
from conformance.errors import WaitTimeout
from conformance.live.evidence import observe
from conformance.plugin import holds
from conformance.static.rules import health
from conformance.wait import wait_until

static = pytest.mark.static


@static
@pytest.mark.control("PROBE-01")
def test_liveness_and_readiness_present(bundle):
    """PROBE-01: every container has a livenessProbe and a readinessProbe."""
    holds(health.liveness_and_readiness_present(bundle))


@static
@pytest.mark.control("PROBE-02")
def test_probes_on_declared_ports(bundle):
    """PROBE-02: every probe targets a port its container declares."""
    holds(health.probes_on_declared_ports(bundle))


@static
@pytest.mark.control("PROBE-03")
def test_readiness_distinct_from_liveness(bundle):
    """PROBE-03: readiness differs from liveness and reacts within ten seconds."""
    holds(health.readiness_distinct_from_liveness(bundle))


@static
@pytest.mark.control("PROBE-04")
def test_liveness_timing_sane(bundle):
    """PROBE-04: liveness tolerates a blip, timeouts fit their periods, slow starters have a startup probe."""
    holds(health.liveness_timing_sane(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live


@live
@pytest.mark.control("PROBE-01")
def test_pods_ready(live, evidence):
    """PROBE-01: the Deployment rolls out and every container of at least minReplicas pods is Ready in time."""
    spec = fixtures.workload()
    deadline = observe.expectations()["probe"]["ready_within_seconds"]
    minimum = observe.expectations()["hpa"]["min_replicas"]
    error = live.workload.rollout_error
    if error is None:
        # Not `kubectl wait -l`: it also waits for a pod that is terminating (the previous run's scale-down)
        # and, once that pod is gone, sits out the whole deadline (measured: 300 s, then a false failure).
        try:
            wait_until(f"every pod of {spec.ref('Deployment')} to be Ready",
                       lambda: observe.every_pod_ready(live.kube), timeout=deadline, interval=2)
        except WaitTimeout as exc:
            saved = live.kube.save_evidence(spec.namespace, live.evidence_dir)
            error = f"{exc}; events, pods and logs saved in {saved}"
    pods = observe.api_pods(live.kube)
    gaps = [f"{spec.ref('Deployment')}: {error}"] if error else []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if not status.get("ready"):
                waiting = (status.get("state") or {}).get("waiting") or {}
                gaps.append(f"Pod {spec.namespace}/{pod['metadata']['name']} container {status['name']}: not ready"
                            + (f" ({waiting.get('reason')})" if waiting.get("reason") else ""))
    ready = sum(observe.is_ready(p) for p in pods)
    if ready < minimum:
        gaps.append(f"{spec.ref('Deployment')}: {ready} Ready pod(s), fewer than the {minimum} the HPA keeps")
    evidence.append({"command": f"kubectl wait --for=condition=Ready pods -l {spec.selector}",
                     "note": f"{ready} of {len(pods)} pod(s) Ready; deadline {deadline}s"})
    holds(gaps)


@live
@pytest.mark.control("PROBE-03")
def test_failing_readiness_leaves_endpoints(experiments, evidence):
    """PROBE-03: a failing readiness takes the pod out of the Service's endpoints; recovery puts it back."""
    record = experiments["readiness"]
    evidence += record.evidence
    holds(record.gaps)


@live
@pytest.mark.control("PROBE-04")
def test_failing_liveness_restarts_container(experiments, evidence):
    """PROBE-04: a failing liveness probe restarts that container, which then comes back Ready."""
    record = experiments["liveness"]
    evidence += record.evidence
    holds(record.gaps)
