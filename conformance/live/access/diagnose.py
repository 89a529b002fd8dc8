"""Why a cluster wait would hang, found in seconds and said in one line each.

A wait that times out after ten minutes tells the user nothing they can act on. Three causes
account for every hang measured on these clusters: an aggregated APIService that is unavailable
(namespace deletion and HPA metrics stall on it), a namespace stuck terminating (its conditions
say on what), and a platform component whose Service has no ready endpoint. `blockers` reads all
three in three kubectl calls; waits ask it before giving up and checks before they start.

The kubectl wrapper (kube) asks this module why its waits time out, so this module does not import
the wrapper back: `kube` below is any Kube, and kubectl's failures are caught as the ConformanceError
every KubeError is.
"""

from __future__ import annotations

from typing import Any

from conformance.errors import ConformanceError

# The Services the platform phase installs, and what stops working without them.
COMPONENTS = {
    ("kube-system", "kube-dns"): "every name lookup",
    ("kube-system", "metrics-server"): "HPA metrics and namespace deletion",
    ("istio-system", "istiod"): "sidecar injection and mesh configuration",
    ("vault", "vault"): "Vault logins and the agents' secrets",
    ("vault", "vault-agent-injector-svc"): "Vault agent injection",
}
_DELETION_CONDITIONS = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                        "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                        "NamespaceFinalizersRemaining")


def unavailable_apiservices(apiservices: dict[str, Any]) -> list[str]:
    out = []
    for item in apiservices.get("items") or []:
        available = next((c for c in (item.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Available"), None)
        if available is not None and available.get("status") != "True":
            out.append(f"APIService {item['metadata']['name']} is unavailable ({available.get('reason')}): "
                       "namespace deletion and anything that lists its API group wait until it is back")
    return out


def stuck_namespaces(namespaces: dict[str, Any]) -> list[str]:
    out = []
    for item in namespaces.get("items") or []:
        if (item.get("status") or {}).get("phase") != "Terminating":
            continue
        reasons = [f"{c['type']}: {c.get('message', '')}".strip() for c in item["status"].get("conditions") or []
                   if c.get("type") in _DELETION_CONDITIONS and c.get("status") == "True"]
        if reasons:
            out.append(f"namespace {item['metadata']['name']} is stuck terminating: {'; '.join(reasons)}"[:400])
    return out


def components_without_endpoints(slices: dict[str, Any], present: set[tuple[str, str]]) -> list[str]:
    ready: dict[tuple[str, str], int] = {}
    for item in slices.get("items") or []:
        meta = item["metadata"]
        key = (meta["namespace"], (meta.get("labels") or {}).get("kubernetes.io/service-name", ""))
        ready[key] = ready.get(key, 0) + sum(1 for e in item.get("endpoints") or []
                                             if (e.get("conditions") or {}).get("ready"))
    return [f"Service {ns}/{name} has no ready endpoint: {COMPONENTS[(ns, name)]} stop"
            for (ns, name) in COMPONENTS if (ns, name) in present and not ready.get((ns, name))]


def blockers(kube) -> list[str]:
    """Every cause found, one line each; an empty list when none of the known causes applies."""
    try:
        found = unavailable_apiservices(kube.json("get", "apiservices", timeout=20))
        found += stuck_namespaces(kube.json("get", "namespaces", timeout=20))
        services = kube.json("get", "services", "-A", timeout=20)
        present = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in services.get("items") or []}
        found += components_without_endpoints(kube.json("get", "endpointslices", "-A", timeout=20), present)
    except ConformanceError as exc:
        return [f"the API server did not answer the diagnosis: {exc}"]
    return found


def explain(kube) -> str:
    """The blockers as one suffix for an error message ('' when none is known)."""
    found = blockers(kube)
    return f" (likely cause: {'; '.join(found)})" if found else ""
