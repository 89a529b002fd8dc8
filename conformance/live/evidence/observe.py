"""Reading the live cluster's state for the checks: pods as admitted, endpoints, HPA conditions."""

from __future__ import annotations

from typing import Any

from conformance import fixtures
from conformance.live.access.kube import Kube
from conformance.static.manifests import K8sObject, PodTemplate

DEV_NAMESPACE = fixtures.workload().namespace
API_SELECTOR = fixtures.workload().selector


def expectations() -> dict[str, Any]:
    """fixtures/expectations/live.yaml: outcomes and bounds only the live tier has."""
    return fixtures.expectations("live")


def api_pods(kube: Kube) -> list[dict[str, Any]]:
    """The cortex-api pods as admitted, sidecars and Vault agents included (not terminating ones)."""
    pods = kube.json("get", "pods", "-n", DEV_NAMESPACE, "-l", API_SELECTOR)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def as_template(pod: dict[str, Any]) -> PodTemplate:
    """A live Pod as the static rules see a pod template, so the same rules run on both."""
    return PodTemplate(K8sObject(pod, "cluster"), pod)


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def every_pod_ready(kube: Kube) -> bool:
    """Some cortex-api pod exists and every one not terminating is Ready: none is still starting."""
    pods = api_pods(kube)
    return bool(pods) and all(is_ready(p) for p in pods)


def endpoint_addresses(kube: Kube, service: str = "cortex-api", namespace: str = DEV_NAMESPACE) -> set[str]:
    """Ready addresses of a Service, from its EndpointSlices."""
    slices = kube.json("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
    return {address for s in slices["items"] for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready") for address in e.get("addresses", [])}


def container_restarts(pod: dict[str, Any], container: str) -> int:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == container:
            return int(status.get("restartCount", 0))
    return 0


def hpa(kube: Kube, name: str = "cortex-api", namespace: str = DEV_NAMESPACE) -> dict[str, Any]:
    return kube.json("get", "hpa", name, "-n", namespace)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})
