"""The live checks that disturb the workload, run as experiments and scheduled together.

Each experiment does one thing to the running workload and records what happened (gaps and
evidence); the checks of PROBE-03, PROBE-04, AVAIL-01 and HPA-03 only judge the record. Run one
after the other they cost a minute and a half, almost all of it waiting on the kubelet's probe
periods and the HPA's syncs, so they are scheduled so that waits overlap where the experiments
cannot disturb each other:

    1. the liveness restart on one pod  ||  CPU load on the others, until the HPA scales up
       (a failing liveness probe does not make the pod unready, so the HPA's average still rises);
    2. the readiness toggle on one pod (taking it out of the endpoints must not meet a restart);
    3. the eviction of every pod at once (last: it replaces a pod).

Only the experiments a run selected are made (a fault run names its controls).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance import fixtures
from conformance.errors import ConformanceError, WaitTimeout
from conformance.live.access import diagnose
from conformance.live.evidence import judge, observe
from conformance.live.evidence.traffic import in_parallel, pod_exec
from conformance.wait import wait_until

EXPERIMENTS = {"PROBE-03": "readiness", "PROBE-04": "liveness", "AVAIL-01": "eviction", "HPA-03": "load"}


@dataclass
class Record:
    """What one experiment saw: gaps (empty when the requirement held) and evidence items."""

    gaps: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)


class CtlFailed(ConformanceError):
    """The stand-in's control command failed: the experiment could not be made."""


def _ctl(live, pod: str, *words: str) -> None:
    spec = fixtures.workload()
    result = pod_exec(live.kube, spec.namespace, pod, ["/standin", "ctl", *words], container=spec.name)
    if result.returncode != 0:
        raise CtlFailed(f"Pod {spec.namespace}/{pod}: standin ctl {' '.join(words)} failed: {result.stderr.strip()}")


def _ready_pods(live) -> list[dict[str, Any]]:
    return [p for p in observe.api_pods(live.kube) if observe.is_ready(p)]


# --- PROBE-03, PROBE-04 -----------------------------------------------------------------------------


def readiness(live, pod: dict[str, Any]) -> Record:
    """Fail readiness, see the pod leave the endpoints, recover, see it rejoin."""
    service = fixtures.workload().ref("Service")
    bound = observe.expectations()["probe"]["endpoint_change_within_seconds"]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    record = Record(evidence=[{"command": f"kubectl exec {name} -c cortex-api -- /standin ctl readiness fail|ok"}])
    try:
        _ctl(live, name, "readiness", "fail")
        try:
            wait_until(f"{ip} ({name}) to leave the endpoints of {service}",
                       lambda: ip not in observe.endpoint_addresses(live.kube), timeout=bound, interval=1)
        finally:
            _ctl(live, name, "readiness", "ok")
        wait_until(f"{ip} ({name}) to rejoin the endpoints of {service}",
                   lambda: ip in observe.endpoint_addresses(live.kube), timeout=bound, interval=1)
    except ConformanceError as exc:
        record.gaps.append(f"{service}: {exc}")
        return record
    record.evidence[0].update(exit_code=0, note=f"left and rejoined the endpoints within {bound}s")
    return record


def liveness(live, pod: dict[str, Any]) -> Record:
    """Fail liveness, see that container restart and come back Ready."""
    spec = fixtures.workload()
    bound = observe.expectations()["probe"]["restart_within_seconds"]
    name = pod["metadata"]["name"]
    before = observe.container_restarts(pod, spec.name)
    record = Record(evidence=[{"command": f"kubectl exec {name} -c {spec.name} -- /standin ctl liveness fail"}])

    def restarted() -> bool:
        current = live.kube.json("get", "pod", name, "-n", spec.namespace)
        return observe.container_restarts(current, spec.name) > before and observe.is_ready(current)

    def unprobed() -> str:
        # The admitted pod's own spec: with no liveness probe the kubelet restarts nothing, however long.
        containers = (pod.get("spec") or {}).get("containers") or []
        probe = next((c.get("livenessProbe") for c in containers if c.get("name") == spec.name), None)
        return "" if probe else f"container {spec.name} has no livenessProbe: nothing will restart it"

    try:
        _ctl(live, name, "liveness", "fail")
        wait_until(f"container {spec.name} of Pod {spec.namespace}/{name} to restart and be Ready again", restarted,
                   timeout=bound, interval=2, fail=unprobed)
    except ConformanceError as exc:
        with contextlib.suppress(ConformanceError):
            _ctl(live, name, "liveness", "ok")
        record.gaps.append(f"Pod {spec.namespace}/{name}: {exc}")
        return record
    record.evidence[0].update(exit_code=0, note=f"restartCount went above {before} within {bound}s")
    return record


# --- HPA-03 ---------------------------------------------------------------------------------------


def cpu_utilisation(hpa: dict[str, Any]) -> int | None:
    for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if resource.get("name") == "cpu":
            return (resource.get("current") or {}).get("averageUtilization")
    return None


def metrics_blocker(live) -> str | None:
    """An unavailable metrics API, found in seconds, instead of waiting out the whole bound for it."""
    found = [b for b in diagnose.blockers(live.kube) if "metrics" in b]
    return "; ".join(found) or None


def capped(live, start: int) -> str | None:
    """The HPA wants more pods than its maximum allows and stays at the start: waiting changes nothing."""
    current = observe.hpa(live.kube)
    limited = observe.condition(current, "ScalingLimited")
    desired = int((current.get("status") or {}).get("desiredReplicas", 0))
    if limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas" and desired <= start:
        return f"its maximum caps it at {desired} ({limited.get('message', '')})"
    return None


def load(live, pods: list[dict[str, Any]]) -> Record:
    """CPU load on `pods` until the HPA sees it above its target and asks for more than the minimum."""
    spec = fixtures.workload()
    hpa = observe.expectations()["hpa"]
    name = spec.ref("HorizontalPodAutoscaler")
    start, peak = hpa["min_replicas"], {"utilisation": 0, "desired": 0}
    names = [p["metadata"]["name"] for p in pods]
    record = Record()

    def burn(seconds: int) -> list:
        return in_parallel([lambda pod=pod: pod_exec(live.kube, spec.namespace, pod, [
            "/standin", "ctl", "burn", "--seconds", str(seconds)], container=spec.name) for pod in names])

    def scaled() -> bool:
        status = observe.hpa(live.kube).get("status") or {}
        peak["utilisation"] = max(peak["utilisation"], cpu_utilisation({"status": status}) or 0)
        peak["desired"] = max(peak["desired"], int(status.get("desiredReplicas", 0)))
        return peak["desired"] > start and peak["utilisation"] > hpa["target_cpu_utilization"]

    if not names:
        record.gaps.append(f"{spec.ref('Deployment')}: no Ready pod to load")
        return record
    began = time.monotonic()
    started = burn(hpa["burn_seconds"])
    record.gaps += [f"Pod {spec.namespace}/{pod}: the load did not start ({r.stderr.strip()[-120:]})"
                    for pod, r in zip(names, started, strict=True) if r.returncode != 0]
    try:
        if not record.gaps:
            wait_until(f"{name} to see the load (CPU above {hpa['target_cpu_utilization']}%) and scale above {start}",
                       scaled, timeout=hpa["scale_up_within_seconds"], interval=2,
                       fail=lambda: capped(live, start) or metrics_blocker(live))
    except WaitTimeout as exc:
        record.gaps.append(f"{name}: {exc} (peak CPU {peak['utilisation']}%, peak desiredReplicas {peak['desired']})")
    finally:
        burn(0)
    record.evidence.append({
        "command": f"kubectl exec <{len(names)} cortex-api pod(s)> -c {spec.name} -- /standin ctl burn --seconds N",
        "note": f"CPU up to {peak['utilisation']}%, desiredReplicas {start} -> {peak['desired']} after "
                f"{round(time.monotonic() - began)}s (bound {hpa['scale_up_within_seconds']}s, "
                f"max {hpa['max_replicas']})"})
    if peak["desired"] > hpa["max_replicas"]:
        record.gaps.append(f"{name}: desiredReplicas reached {peak['desired']}, above the maximum "
                           f"{hpa['max_replicas']}")
    return record


# --- AVAIL-01 -------------------------------------------------------------------------------------


def _evict(live, pod: str) -> int:
    """POST the pod's eviction (what `kubectl drain` does): 201 granted, 429 refused by a budget."""
    namespace = fixtures.workload().namespace
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": namespace}})
    result = live.kube.run("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
                           input=body, check=False, timeout=30)
    if result.returncode == 0:
        return 201
    for status, words in ((429, ("TooManyRequests", "429", "disruption budget")), (404, ("NotFound",)),
                          (403, ("Forbidden",)), (500, ("InternalError",))):
        if any(w in result.stderr for w in words):
            return status
    return 0


WHOLE_WITHIN = 120.0


def _whole(live, budget: dict[str, Any]) -> bool:
    """The budget is computed for its spec and every pod it expects is healthy: the state in which a drain may
    take exactly the budget's allowance. (A pod still starting, from the HPA's scale-up or a restarted
    container, already uses the allowance: measured, 0 of 3 evictions granted with a fourth pod in Init.)"""
    status = live.kube.json("get", "pdb", budget["metadata"]["name"], "-n", budget["metadata"]["namespace"]) \
        .get("status") or {}
    return status.get("observedGeneration") == budget["metadata"]["generation"] and \
        status.get("currentHealthy", 0) >= status.get("expectedPods", 1) > 0


def eviction(live) -> Record:
    """Ask to evict every Ready pod of a whole workload at once; the budget must grant exactly its allowance and
    refuse the rest."""
    spec = fixtures.workload()
    expected = observe.expectations()["availability"]
    record = Record()
    budgets = live.kube.json("get", "pdb", "-n", spec.namespace)["items"]
    for budget in budgets:
        name = f"PodDisruptionBudget {spec.namespace}/{budget['metadata']['name']}"
        try:
            wait_until(f"{name} to count every pod it expects healthy", lambda b=budget: _whole(live, b),
                       timeout=WHOLE_WITHIN)
        except WaitTimeout as exc:
            record.gaps.append(f"{exc}: the workload never became whole, so the budget could not be judged")
            return record
    pods = _ready_pods(live)
    if not pods:
        record.gaps.append(f"{spec.ref('Deployment')}: no Ready pod to evict")
        return record
    names = [p["metadata"]["name"] for p in pods]
    answers = dict(zip(names, in_parallel([lambda n=n: _evict(live, n) for n in names]), strict=True))
    record.evidence.append({
        "command": f"POST /api/v1/namespaces/{spec.namespace}/pods/<each of {len(names)} pods>/eviction (all at once)",
        "note": ", ".join(f"{n}: {s or 'error'}" for n, s in sorted(answers.items()))
        + f"; budgets in the namespace: {', '.join(b['metadata']['name'] for b in budgets) or 'none'}"})
    record.gaps += judge.eviction_gaps(spec.ref("PodDisruptionBudget"), answers, expected["evictions_granted_at_once"])
    # The evicted pods' replacements start meanwhile; whoever uses the workload next waits for them
    # (the fault catalogue does, before each fault), so this run does not.
    return record


# --- the schedule ---------------------------------------------------------------------------------


def run(live, wanted: set[str]) -> dict[str, Record]:
    """The experiments of the `wanted` controls, overlapped as the module docstring says."""
    out: dict[str, Record] = {}
    pods = _ready_pods(live)
    if not pods:
        nothing = Record(gaps=[f"{fixtures.workload().ref('Deployment')}: no Ready pod to experiment on"])
        return {EXPERIMENTS[c]: nothing for c in wanted}
    first: list[tuple[str, Callable[[], Record]]] = []
    if "PROBE-04" in wanted:
        first.append(("liveness", lambda: liveness(live, pods[-1])))
    if "HPA-03" in wanted:
        burned = pods[:-1] if "PROBE-04" in wanted and len(pods) > 1 else pods
        first.append(("load", lambda: load(live, burned)))
    out.update(zip([n for n, _ in first], in_parallel([call for _, call in first]), strict=True))
    if "PROBE-03" in wanted:
        current = _ready_pods(live)
        out["readiness"] = readiness(live, current[0]) if current else Record(
            gaps=[f"{fixtures.workload().ref('Deployment')}: no Ready pod to take out of the endpoints"])
    if "AVAIL-01" in wanted:
        out["eviction"] = eviction(live)
    return out
