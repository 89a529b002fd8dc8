"""PROBE: liveness and readiness on every container, on declared ports, distinct and sane."""

import pytest

from conformance.errors import WaitTimeout
from conformance.live import observe
from conformance.live.traffic import pod_exec
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


def _ready_pods(live) -> list[dict]:
    pods = [p for p in observe.api_pods(live.kube) if observe.is_ready(p)]
    if not pods:
        pytest.fail("Deployment cortex-dev/cortex-api: no Ready pod to test on", pytrace=False)
    return pods


def _ctl(live, pod: str, *words: str) -> None:
    result = pod_exec(live.kube, "cortex-dev", pod, ["/standin", "ctl", *words], container="cortex-api")
    if result.returncode != 0:
        pytest.fail(f"Pod cortex-dev/{pod}: standin ctl {' '.join(words)} failed: {result.stderr.strip()}",
                    pytrace=False)


@live
@pytest.mark.control("PROBE-01")
def test_pods_ready(live, evidence):
    """PROBE-01: every container of every cortex-api pod is Ready within the deadline."""
    deadline = observe.expectations()["probe"]["ready_within_seconds"]
    live.kube.wait("every cortex-api pod to be Ready", "--for=condition=Ready", "pods", "-n", "cortex-dev", "-l",
                   observe.API_SELECTOR, timeout=deadline, evidence=live.evidence_dir, namespace="cortex-dev")
    gaps = []
    for pod in observe.api_pods(live.kube):
        for status in pod["status"].get("containerStatuses") or []:
            if not status.get("ready"):
                gaps.append(f"Pod cortex-dev/{pod['metadata']['name']} container {status['name']}: not ready")
    evidence.append({"command": "kubectl wait --for=condition=Ready pods -l app.kubernetes.io/name=cortex-api",
                     "exit_code": 0, "note": f"deadline {deadline}s"})
    holds(gaps)


@live
@pytest.mark.control("PROBE-03")
def test_failing_readiness_leaves_endpoints(live, evidence):
    """PROBE-03: a failing readiness takes the pod out of the Service's endpoints; recovery puts it back."""
    bound = observe.expectations()["probe"]["endpoint_change_within_seconds"]
    pod = _ready_pods(live)[0]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    _ctl(live, name, "readiness", "fail")
    try:
        try:
            wait_until(f"{ip} ({name}) to leave the endpoints of Service cortex-dev/cortex-api",
                       lambda: ip not in observe.endpoint_addresses(live.kube), timeout=bound, interval=1)
        except WaitTimeout as exc:
            pytest.fail(f"Service cortex-dev/cortex-api: {exc}", pytrace=False)
    finally:
        _ctl(live, name, "readiness", "ok")
    try:
        wait_until(f"{ip} ({name}) to rejoin the endpoints of Service cortex-dev/cortex-api",
                   lambda: ip in observe.endpoint_addresses(live.kube), timeout=bound, interval=1)
    except WaitTimeout as exc:
        pytest.fail(f"Service cortex-dev/cortex-api: {exc}", pytrace=False)
    evidence.append({"command": f"kubectl exec {name} -c cortex-api -- /standin ctl readiness fail|ok",
                     "exit_code": 0, "note": f"left and rejoined the endpoints within {bound}s"})


@live
@pytest.mark.control("PROBE-04")
def test_failing_liveness_restarts_container(live, evidence):
    """PROBE-04: a failing liveness probe restarts that container, which then comes back Ready."""
    bound = observe.expectations()["probe"]["restart_within_seconds"]
    pod = _ready_pods(live)[-1]
    name = pod["metadata"]["name"]
    before = observe.container_restarts(pod, "cortex-api")
    _ctl(live, name, "liveness", "fail")

    def restarted() -> bool:
        current = live.kube.json("get", "pod", name, "-n", "cortex-dev")
        return observe.container_restarts(current, "cortex-api") > before and observe.is_ready(current)

    try:
        wait_until(f"container cortex-api of Pod cortex-dev/{name} to restart and be Ready again", restarted,
                   timeout=bound, interval=2)
    except WaitTimeout as exc:
        pytest.fail(f"Pod cortex-dev/{name}: {exc}", pytrace=False)
    evidence.append({"command": f"kubectl exec {name} -c cortex-api -- /standin ctl liveness fail",
                     "exit_code": 0, "note": f"restartCount went above {before} within {bound}s"})
