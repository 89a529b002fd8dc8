"""Istio policy model: which policies apply to a pod, how hosts resolve, which routes reach it.

Pure analysis of rendered objects, following Istio's documented semantics: a workload-level
PeerAuthentication overrides the namespace one, which overrides the mesh-wide one in the root
namespace; short hosts resolve in the namespace of the object that names them; an ALLOW policy
that applies to a workload denies whatever none of its rules match.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conformance.errors import InputError
from conformance.static.manifests import Bundle, K8sObject, PodTemplate, pod_template_of, selector_matches

ROOT_NAMESPACE = "istio-system"
CLUSTER_DOMAIN = "cluster.local"
INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
INJECT_OPT = "sidecar.istio.io/inject"


def injection(bundle: Bundle, pod: PodTemplate, served: frozenset[str] | None = None) -> str | None:
    """Why `pod` gets no sidecar, or None when it gets one.

    `served`: the revisions some control plane's injector answers for; None takes any revision label as served.
    """
    ns_labels = bundle.namespace_labels(pod.namespace)
    if bundle.get("Namespace", pod.namespace) is None:
        return f"namespace {pod.namespace} is not declared, so nothing turns injection on"
    if ns_labels.get(INJECTION_LABEL) == "disabled":
        return f"namespace {pod.namespace} has {INJECTION_LABEL}=disabled"
    if ns_labels.get(INJECTION_LABEL) != "enabled" and REVISION_LABEL not in ns_labels:
        return f"namespace {pod.namespace} has neither {INJECTION_LABEL}=enabled nor {REVISION_LABEL}"
    revision = ns_labels.get(REVISION_LABEL)
    # istio-injection=enabled wins over a revision label; without it, only that revision's injector acts.
    if ns_labels.get(INJECTION_LABEL) != "enabled" and served is not None and revision not in served:
        return (f"namespace {pod.namespace} has {REVISION_LABEL}={revision}, a revision no control plane serves "
                f"(served: {', '.join(sorted(served)) or 'none'})")
    for where, values in (("label", pod.labels), ("annotation", pod.annotations)):
        if str(values.get(INJECT_OPT, "")).lower() == "false":
            return f"pod template {where} {INJECT_OPT} is \"false\""
    return None


def applies_to(policy: K8sObject, pod: PodTemplate) -> bool:
    """Whether a selector-scoped Istio policy (PA, RA, AP, Telemetry) applies to `pod`."""
    if policy.namespace not in (pod.namespace, ROOT_NAMESPACE):
        return False
    if policy.spec.get("targetRef") or policy.spec.get("targetRefs"):
        return False
    selector = policy.spec.get("selector") or {}
    return selector_matches({"matchLabels": selector.get("matchLabels") or {}}, pod.labels)


def is_workload_scoped(policy: K8sObject) -> bool:
    return bool((policy.spec.get("selector") or {}).get("matchLabels"))


# --- hosts ---------------------------------------------------------------------------------------

def fqdn(host: str, namespace: str) -> str:
    """Istio's resolution of a short service host in `namespace`."""
    if "*" in host or host.endswith(f".{CLUSTER_DOMAIN}"):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 2:
        return f"{host}.svc.{CLUSTER_DOMAIN}"
    if parts[-1] == "svc" and len(parts) == 3:
        return f"{host}.{CLUSTER_DOMAIN}"
    return host


def service_host(service: K8sObject) -> str:
    return f"{service.name}.{service.namespace}.svc.{CLUSTER_DOMAIN}"


def host_matches(pattern: str, host: str) -> bool:
    """Istio host matching, where `*.example.com` covers any subdomain and `*` covers everything."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    return pattern == host


def services_for_host(bundle: Bundle, host: str, namespace: str) -> list[K8sObject]:
    full = fqdn(host, namespace)
    return [svc for svc in bundle.of_kind("Service") if host_matches(full, service_host(svc))]


def in_mesh_host(host: str, namespace: str) -> bool:
    """Whether `host` can name an in-cluster service (so TLS toward it must stay Istio mTLS)."""
    full = fqdn(host, namespace)
    return full == "*" or full.endswith(f".{CLUSTER_DOMAIN}") or full in {f"*.{CLUSTER_DOMAIN}", "*.local"}


def pods_of_service(bundle: Bundle, service: K8sObject) -> list[PodTemplate]:
    selector = service.spec.get("selector")
    if not selector:
        return []
    return bundle.pods_selected(service.namespace or "default", selector)


# --- routes through the gateway ------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    virtual_service: K8sObject
    index: int
    destination_host: str
    destination_port: int | None
    prefixes: tuple[str, ...]


def gateway_routes(bundle: Bundle) -> Iterator[Route]:
    """HTTP routes of VirtualServices bound to a Gateway (not only to the mesh)."""
    for vs in bundle.of_kind("VirtualService"):
        gateways = [g for g in vs.spec.get("gateways") or [] if g != "mesh"]
        if not gateways:
            continue
        for index, http in enumerate(vs.spec.get("http") or []):
            prefixes = []
            for match in http.get("match") or [{}]:
                uri = match.get("uri") or {}
                prefixes.append(uri.get("prefix") or uri.get("exact") or ("/" if not uri else uri.get("regex", "/")))
            for route in http.get("route") or []:
                dest = route.get("destination") or {}
                yield Route(vs, index, dest.get("host", ""), (dest.get("port") or {}).get("number"),
                            tuple(prefixes))


def api_pods(bundle: Bundle) -> list[tuple[PodTemplate, list[Route]]]:
    """Pods that the gateway routes reach, with the routes reaching each."""
    reached: dict[int, tuple[PodTemplate, list[Route]]] = {}
    for route in gateway_routes(bundle):
        for svc in services_for_host(bundle, route.destination_host, route.virtual_service.namespace or ""):
            for pod in pods_of_service(bundle, svc):
                reached.setdefault(id(pod), (pod, []))[1].append(route)
    return list(reached.values())


def target_port(bundle: Bundle, route: Route, pod: PodTemplate) -> int | None:
    """The container port a route's Service port lands on in `pod`."""
    for svc in services_for_host(bundle, route.destination_host, route.virtual_service.namespace or ""):
        for port in svc.spec.get("ports") or []:
            if route.destination_port not in (None, port.get("port")):
                continue
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str):
                return pod.named_ports().get(target)
            return target
    return None


# --- authorization ------------------------------------------------------------------------------

def path_may_match(pattern: str, prefix: str) -> bool:
    """Whether an AuthorizationPolicy path pattern can match some path under `prefix`.

    Istio paths support exact, prefix (`/v1/*`), suffix (`*.json`) and presence (`*`) matches.
    """
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        stem = pattern[:-1]
        return stem.startswith(prefix) or prefix.startswith(stem)
    if pattern.startswith("*"):
        return True
    return pattern.startswith(prefix) or fnmatch.fnmatchcase(prefix, pattern)


def operation_reaches(operation: dict[str, Any], prefix: str, port: int | None) -> bool:
    """Whether an AuthorizationPolicy `to.operation` can match a request to the API."""
    paths = operation.get("paths")
    if paths and not any(path_may_match(p, prefix) for p in paths):
        return False
    if any(p in ("*", f"{prefix}*", prefix) for p in operation.get("notPaths") or []):
        return False
    ports = operation.get("ports")
    if ports and port is not None and str(port) not in [str(p) for p in ports]:
        return False
    return not (port is not None and str(port) in [str(p) for p in operation.get("notPorts") or []])


def rule_reaches(rule: dict[str, Any], prefix: str, port: int | None) -> bool:
    targets = rule.get("to")
    if not targets:
        return True
    return any(operation_reaches(t.get("operation") or {}, prefix, port) for t in targets)


def source_requires_principal(source: dict[str, Any]) -> bool:
    return bool(source.get("requestPrincipals")) and not source.get("notRequestPrincipals")


def when_requires_principal(rule: dict[str, Any]) -> bool:
    return any(c.get("key", "").startswith(("request.auth.principal", "request.auth.claims"))
               and c.get("values") for c in rule.get("when") or [])


DRY_RUN = "istio.io/dry-run"
# strconv.ParseBool's true spellings, which istiod accepts for the dry-run annotation.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def dry_run(policy: K8sObject) -> bool:
    """Whether an AuthorizationPolicy only logs what it would decide (istio.io/dry-run), enforcing nothing."""
    return str(policy.annotations.get(DRY_RUN, "")) in _TRUE


def allow_policies(bundle: Bundle, pod: PodTemplate) -> list[K8sObject]:
    """The ALLOW policies that apply to `pod` and are enforced (a dry-run policy allows and denies nothing)."""
    return [ap for ap in bundle.of_kind("AuthorizationPolicy")
            if (ap.spec.get("action") or "ALLOW") == "ALLOW" and applies_to(ap, pod) and not dry_run(ap)]


def is_allow_all(rule: dict[str, Any]) -> bool:
    """An ALLOW rule that matches every request: `{}`, or only empty sources and operations."""
    sources = [f.get("source") or {} for f in rule.get("from") or []]
    operations = [t.get("operation") or {} for t in rule.get("to") or []]
    return (not rule.get("when") and all(not s for s in sources) and all(not o for o in operations))


def workload_policies(bundle: Bundle, workload: str) -> tuple[list[K8sObject], list[K8sObject]]:
    """The RequestAuthentications and AuthorizationPolicies that apply to the workload's pods."""
    deployment = next((d for d in bundle.of_kind("Deployment") if d.name == workload), None)
    pod = pod_template_of(deployment) if deployment is not None else None
    if pod is None:
        raise InputError(f"the overlay has no Deployment {workload}")
    return ([o for o in bundle.of_kind("RequestAuthentication") if applies_to(o, pod)],
            [o for o in bundle.of_kind("AuthorizationPolicy") if applies_to(o, pod)])
