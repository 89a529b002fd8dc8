"""AVAIL: drainable PDBs, spread, surge-first rollouts, Services that reach their pods."""

from __future__ import annotations

import math
import re

from conformance import fixtures
from conformance.static import mesh
from conformance.static.manifests import Bundle, K8sObject, PodTemplate, selector_matches
from conformance.static.netmodel import Port
from conformance.static.rules import kinds, rule
from conformance.static.rules.scaling import min_replicas, target_of

SPREAD_KEYS = ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
# Istio infers a port's protocol from appProtocol or from the port name's prefix.
ISTIO_PROTOCOL_PREFIXES = ("http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "udp", "mongo",
                           "mysql", "redis")


def scaled(value, total: int) -> int:
    """An int-or-percent against `total`, rounded up as the disruption controller does."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    return int(value)


def _replica_floor(bundle: Bundle, workload: K8sObject) -> int:
    """The fewest replicas the workload runs with: the HPA minimum, else spec.replicas."""
    for hpa in bundle.of_kind("HorizontalPodAutoscaler"):
        target = target_of(bundle, hpa)
        if target is not None and target.kind == workload.kind and target.name == workload.name:
            return min_replicas(hpa)
    return int(workload.spec.get("replicas", 1))


def disruption_gap(pdb: K8sObject, replicas: int) -> str | None:
    """Why `pdb` forbids every voluntary eviction at `replicas`, or None."""
    if "maxUnavailable" in pdb.spec:
        allowed = scaled(pdb.spec["maxUnavailable"], replicas)
        if allowed <= 0:
            return f"maxUnavailable {pdb.spec['maxUnavailable']} allows no eviction at all, so no node can drain"
        if allowed >= replicas:
            return (f"maxUnavailable {pdb.spec['maxUnavailable']} lets all {replicas} pods be evicted at once, "
                    "so it protects nothing")
        return None
    if "minAvailable" in pdb.spec:
        needed = scaled(pdb.spec["minAvailable"], replicas)
        if needed >= replicas:
            return (f"minAvailable {pdb.spec['minAvailable']} keeps all {replicas} pods at the minimum replica "
                    "count, so a node drain blocks forever")
        if needed <= 0:
            return f"minAvailable {pdb.spec['minAvailable']} lets every pod be evicted at once, so it protects nothing"
        return None
    return "sets neither minAvailable nor maxUnavailable"


def _selects(selector, pod: PodTemplate) -> bool:
    """A null selector selects nothing (PDBs, spread constraints); an empty one selects all."""
    return selector is not None and selector_matches(selector, pod.labels)


@rule("AVAIL-01", kinds("Deployment", "StatefulSet", "PodDisruptionBudget"))
def pdb_allows_drain(bundle: Bundle) -> list[str]:
    gaps = []
    pdbs = bundle.of_kind("PodDisruptionBudget")
    for pod in bundle.pods:
        if pod.owner.kind not in ("Deployment", "StatefulSet"):
            continue
        covering = [p for p in pdbs if p.namespace == pod.namespace and _selects(p.spec.get("selector"), pod)]
        if not covering:
            gaps.append(f"{pod.owner.ref}: no PodDisruptionBudget selects its pods")
            continue
        if len(covering) > 1:
            gaps.append(f"{pod.owner.ref}: {len(covering)} PodDisruptionBudgets select its pods; the eviction API "
                        "then refuses every eviction")
        replicas = _replica_floor(bundle, pod.owner)
        for pdb in covering:
            if (problem := disruption_gap(pdb, replicas)) is not None:
                gaps.append(f"{pdb.ref}: {problem}")
    for pdb in pdbs:
        if not any(_selects(pdb.spec.get("selector"), pod) for pod in bundle.pods_selected(
                pdb.namespace or "default", pdb.spec.get("selector") or {})):
            gaps.append(f"{pdb.ref}: selector {pdb.spec.get('selector')} matches no pod in the manifests")
    return gaps


def _spread_gaps(pod: PodTemplate) -> list[str]:
    gaps = []
    if pod.spec.get("nodeName"):
        gaps.append(f"{pod.owner.ref}: nodeName {pod.spec['nodeName']} pins every replica to one node")
    constraints = pod.spec.get("topologySpreadConstraints") or []
    for key in SPREAD_KEYS:
        found = [c for c in constraints if c.get("topologyKey") == key]
        if not found:
            gaps.append(f"{pod.owner.ref}: no topologySpreadConstraint over {key}")
            continue
        for c in found:
            if not _selects(c.get("labelSelector"), pod):
                gaps.append(f"{pod.owner.ref}: the spread over {key} has a labelSelector that does not match "
                            "its own pods, so it spreads nothing")
            if int(c.get("maxSkew", 0)) < 1:
                gaps.append(f"{pod.owner.ref}: the spread over {key} has maxSkew {c.get('maxSkew')}")
            if key == "kubernetes.io/hostname" and c.get("whenUnsatisfiable") == "DoNotSchedule" and (
                    c.get("nodeTaintsPolicy") != "Honor"):
                gaps.append(f"{pod.owner.ref}: the hard spread over hosts ignores taints, so a cordoned node still "
                            "counts as a domain and a drain can leave evicted pods Pending")
    return gaps


@rule("AVAIL-02", kinds("Deployment", "StatefulSet"))
def pods_spread(bundle: Bundle) -> list[str]:
    return [gap for pod in bundle.pods if pod.owner.kind in ("Deployment", "StatefulSet")
            for gap in _spread_gaps(pod)]


def _is_zero(value) -> bool:
    return str(value) in ("0", "0%")


@rule("AVAIL-03", kinds("Deployment"))
def rollout_keeps_capacity(bundle: Bundle) -> list[str]:
    gaps = []
    for deployment in bundle.of_kind("Deployment"):
        strategy = deployment.spec.get("strategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            gaps.append(f"{deployment.ref}: strategy {strategy.get('type')} stops every pod before starting new ones")
            continue
        rolling = strategy.get("rollingUpdate") or {}
        unavailable = rolling.get("maxUnavailable", "25%")
        if not _is_zero(unavailable):
            gaps.append(f"{deployment.ref}: rollingUpdate.maxUnavailable is {unavailable}, so a rollout drops "
                        "serving pods before their replacements are Ready")
        if _is_zero(rolling.get("maxSurge", "25%")):
            gaps.append(f"{deployment.ref}: rollingUpdate.maxSurge is 0, so with maxUnavailable 0 "
                        "a rollout cannot start")
        template = (deployment.spec.get("template") or {}).get("spec") or {}
        grace = int(template.get("terminationGracePeriodSeconds", 30))
        if grace < 30:
            gaps.append(f"{deployment.ref}: terminationGracePeriodSeconds {grace} cuts in-flight completions when "
                        "a rollout replaces a pod (at least 30)")
    return gaps


def _port_declared(pod: PodTemplate, target) -> bool:
    if isinstance(target, str) and not target.isdigit():
        return target in pod.named_ports()
    return int(target) in pod.declared_ports()


def _expected_inbound() -> dict[str, tuple[str, dict[Port, list[str]]]]:
    """Per workload group of network.yaml: its Kind/name and the ports some expected flow reaches,
    with the groups that reach each. These, and only these, are the ports its Services may serve."""
    spec = fixtures.expectations("network")
    found: dict[str, tuple[str, dict[Port, list[str]]]] = {}
    for name, group in spec["groups"].items():
        if "workload" in group:
            ports: dict[Port, list[str]] = {}
            for flow in spec.get("allowed", []):
                if flow["to"] == name:
                    ports.setdefault(Port.parse(flow["port"]), []).append(flow["from"])
            found[name] = (group["workload"], ports)
    return found


def _target_number(pod: PodTemplate, target) -> int | None:
    if isinstance(target, str) and not target.isdigit():
        return pod.named_ports().get(target)
    return target if isinstance(target, int) else int(target) if isinstance(target, str) else None


def service_port_gaps(bundle: Bundle) -> list[str]:
    """The Services of each expected workload serve exactly the ports network.yaml expects to be reached.

    network.yaml lists pod ports (what NetworkPolicy and the live probes see), so a Service port must
    also forward to the pod port of the same number: port 8080 forwarding to 9222 would put the
    Chrome DevTools port behind the API's name.
    """
    gaps = []
    for group, (workload, expected) in _expected_inbound().items():
        kind, _, name = workload.partition("/")
        pods = [p for p in bundle.pods if p.owner.kind == kind and p.owner.name == name]
        if not pods:
            continue  # an absent workload is reported once, by the checks that need it
        shown = ", ".join(str(p) for p in sorted(expected, key=str)) or "none"
        for pod in pods:
            services = [svc for svc in bundle.of_kind("Service") if svc.namespace == pod.namespace
                        and svc.spec.get("selector") and selector_matches(svc.spec["selector"], pod.labels)]
            if not services and expected:
                gaps.append(f"{pod.owner.ref}: no Service selects its pods, so the ports fixtures/expectations/"
                            f"network.yaml expects to reach {group} on ({shown}) are not served")
            served: set[Port] = set()
            for svc in services:
                for port in svc.spec.get("ports") or []:
                    if not isinstance(port.get("port"), int):
                        continue  # a port that is not a number is SCHEMA-01's to report
                    number = Port(port["port"], str(port.get("protocol") or "TCP").upper())
                    label = f"{svc.ref} port {port.get('name') or number.number}"
                    target = _target_number(pod, port.get("targetPort", port.get("port")))
                    if number not in expected:
                        gaps.append(f"{label}: serves {number}, a port fixtures/expectations/network.yaml expects "
                                    f"no group to reach on {group} (expected: {shown})")
                    elif target is not None and target != number.number:
                        gaps.append(f"{label}: forwards {number} to pod port {target} of {pod.owner.ref}; "
                                    f"network.yaml's ports are the pod's, so it must forward to {number.number}")
                    served.add(number)
            # Several Services may share the ports out (API and metrics apart); together they serve all.
            for missing in sorted(set(expected) - served, key=str) if services else []:
                gaps.append(f"{', '.join(svc.ref for svc in services)}: no port {missing}, which fixtures/"
                            f"expectations/network.yaml expects {', '.join(expected[missing])} to reach on {group}")
    return gaps


@rule("AVAIL-04", kinds("Service"))
def service_selects_pods(bundle: Bundle) -> list[str]:
    gaps = service_port_gaps(bundle)
    for svc in bundle.of_kind("Service"):
        if not svc.spec.get("selector"):
            continue
        pods = mesh.pods_of_service(bundle, svc)
        if not pods:
            gaps.append(f"{svc.ref}: selector {svc.spec['selector']} matches no pod in the manifests, so it has "
                        "no endpoints")
            continue
        for port in svc.spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for pod in pods:
                if not _port_declared(pod, target):
                    gaps.append(f"{svc.ref} port {port.get('name') or port.get('port')}: targetPort {target} is not "
                                f"declared by {pod.owner.ref}")
            name = port.get("name", "")
            if not port.get("appProtocol") and not re.match(rf"^({'|'.join(ISTIO_PROTOCOL_PREFIXES)})(-|$)", name):
                gaps.append(f"{svc.ref} port {name or port.get('port')}: no appProtocol and no protocol prefix in the "
                            "name, so the mesh must guess the protocol")
    return gaps
