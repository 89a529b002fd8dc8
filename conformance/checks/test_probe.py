"""PROBE: liveness and readiness on every container, on declared ports, distinct and sane.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import contextlib

import pytest

from conformance import fixtures
from conformance.errors import WaitTimeout
from conformance.live import observe
from conformance.live.traffic import in_parallel, pod_exec
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


class _CtlFailed(Exception):
    """The stand-in's control command failed: the experiment could not be made."""


def _ctl(live, pod: str, *words: str) -> None:
    result = pod_exec(live.kube, fixtures.workload().namespace, pod, ["/standin", "ctl", *words],
                      container=fixtures.workload().name)
    if result.returncode != 0:
        raise _CtlFailed(f"Pod {fixtures.workload().namespace}/{pod}: standin ctl {' '.join(words)} failed: "
                         f"{result.stderr.strip()}")


@live
@pytest.mark.control("PROBE-01")
def test_pods_ready(live, evidence):
    """PROBE-01: the Deployment rolls out and every container of at least minReplicas pods is Ready in time."""
    spec = fixtures.workload()
    deadline = observe.expectations()["probe"]["ready_within_seconds"]
    minimum = observe.expectations()["hpa"]["min_replicas"]
    error = live.workload.rollout_error
    if error is None:
        try:
            live.kube.wait(f"every pod of {spec.ref('Deployment')} to be Ready", "--for=condition=Ready", "pods",
                           "-n", spec.namespace, "-l", spec.selector, timeout=deadline, evidence=live.evidence_dir,
                           namespace=spec.namespace)
        except WaitTimeout as exc:
            error = str(exc)
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


def _readiness_toggle(live, pod: dict) -> tuple[list[str], dict]:
    """PROBE-03's experiment: fail readiness, see the pod leave the endpoints, recover, see it rejoin."""
    service = fixtures.workload().ref("Service")
    bound = observe.expectations()["probe"]["endpoint_change_within_seconds"]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    evidence = {"command": f"kubectl exec {name} -c cortex-api -- /standin ctl readiness fail|ok"}
    try:
        _ctl(live, name, "readiness", "fail")
        try:
            wait_until(f"{ip} ({name}) to leave the endpoints of {service}",
                       lambda: ip not in observe.endpoint_addresses(live.kube), timeout=bound, interval=1)
        finally:
            _ctl(live, name, "readiness", "ok")
        wait_until(f"{ip} ({name}) to rejoin the endpoints of {service}",
                   lambda: ip in observe.endpoint_addresses(live.kube), timeout=bound, interval=1)
    except (WaitTimeout, _CtlFailed) as exc:
        return [f"{service}: {exc}"], evidence
    return [], {**evidence, "exit_code": 0, "note": f"left and rejoined the endpoints within {bound}s"}


def _liveness_restart(live, pod: dict) -> tuple[list[str], dict]:
    """PROBE-04's experiment: fail liveness, see that container restart and come back Ready."""
    spec = fixtures.workload()
    bound = observe.expectations()["probe"]["restart_within_seconds"]
    name = pod["metadata"]["name"]
    before = observe.container_restarts(pod, spec.name)
    evidence = {"command": f"kubectl exec {name} -c {spec.name} -- /standin ctl liveness fail"}

    def restarted() -> bool:
        current = live.kube.json("get", "pod", name, "-n", spec.namespace)
        return observe.container_restarts(current, spec.name) > before and observe.is_ready(current)

    try:
        _ctl(live, name, "liveness", "fail")
        wait_until(f"container {spec.name} of Pod {spec.namespace}/{name} to restart and be Ready again", restarted,
                   timeout=bound, interval=2)
    except (WaitTimeout, _CtlFailed) as exc:
        with contextlib.suppress(_CtlFailed):
            _ctl(live, name, "liveness", "ok")
        return [f"Pod {spec.namespace}/{name}: {exc}"], evidence
    return [], {**evidence, "exit_code": 0, "note": f"restartCount went above {before} within {bound}s"}


@pytest.fixture(scope="module")
def toggled(live) -> dict[str, tuple[list[str], dict]]:
    """Both probe experiments at once, on two different pods: each waits on the kubelet's probe periods,
    so together they take the longer of the two. With one Ready pod they run one after the other."""
    pods = [p for p in observe.api_pods(live.kube) if observe.is_ready(p)]
    if not pods:
        nothing = ([f"{fixtures.workload().ref('Deployment')}: no Ready pod to test on"], {})
        return {"readiness": nothing, "liveness": nothing}
    if len(pods) >= 2:
        readiness, liveness = in_parallel([lambda: _readiness_toggle(live, pods[0]),
                                           lambda: _liveness_restart(live, pods[-1])])
    else:
        readiness = _readiness_toggle(live, pods[0])
        liveness = _liveness_restart(live, observe.api_pods(live.kube)[0])
    return {"readiness": readiness, "liveness": liveness}


@live
@pytest.mark.control("PROBE-03")
def test_failing_readiness_leaves_endpoints(toggled, evidence):
    """PROBE-03: a failing readiness takes the pod out of the Service's endpoints; recovery puts it back."""
    gaps, item = toggled["readiness"]
    evidence.append(item)
    holds(gaps)


@live
@pytest.mark.control("PROBE-04")
def test_failing_liveness_restarts_container(toggled, evidence):
    """PROBE-04: a failing liveness probe restarts that container, which then comes back Ready."""
    gaps, item = toggled["liveness"]
    evidence.append(item)
    holds(gaps)
