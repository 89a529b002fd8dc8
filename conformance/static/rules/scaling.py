"""HPA: the autoscaler targets the Deployment, has room to grow, can read CPU and can scale up."""

from __future__ import annotations

from conformance.static.manifests import Bundle, K8sObject, PodTemplate, pod_template_of
from conformance.static.rules import kinds, rule
from conformance.static.rules.podsecurity import quantity


def target_of(bundle: Bundle, hpa: K8sObject) -> K8sObject | None:
    ref = hpa.spec.get("scaleTargetRef") or {}
    target = bundle.get(ref.get("kind", ""), ref.get("name", ""), hpa.namespace)
    if target is None:
        return None
    if ref.get("apiVersion") and ref["apiVersion"] != target.api_version:
        return None
    return target


def min_replicas(hpa: K8sObject) -> int:
    return int(hpa.spec.get("minReplicas", 1))


def scaled_workloads(bundle: Bundle) -> list[tuple[K8sObject, PodTemplate | None]]:
    return [(hpa, pod_template_of(t) if (t := target_of(bundle, hpa)) else None)
            for hpa in bundle.of_kind("HorizontalPodAutoscaler")]


@rule("HPA-01", kinds("Deployment", "HorizontalPodAutoscaler"))
def hpa_targets_deployment_with_room(bundle: Bundle) -> list[str]:
    gaps = []
    hpas = bundle.of_kind("HorizontalPodAutoscaler")
    targeted = {(t.kind, t.namespace, t.name) for hpa in hpas if (t := target_of(bundle, hpa))}
    for deployment in bundle.of_kind("Deployment"):
        if (deployment.kind, deployment.namespace, deployment.name) not in targeted:
            gaps.append(f"{deployment.ref}: no HorizontalPodAutoscaler targets it")
        elif "replicas" in deployment.spec:
            gaps.append(f"{deployment.ref}: spec.replicas is set, so every apply resets the count the "
                        "HorizontalPodAutoscaler chose")
    for hpa in hpas:
        ref = hpa.spec.get("scaleTargetRef") or {}
        if target_of(bundle, hpa) is None:
            gaps.append(f"{hpa.ref}: scaleTargetRef {ref.get('apiVersion')} {ref.get('kind')} {ref.get('name')} "
                        "is not in the manifests")
        low, high = min_replicas(hpa), int(hpa.spec.get("maxReplicas", 0))
        if low < 2:
            gaps.append(f"{hpa.ref}: minReplicas is {low}, a single point of failure (needs >= 2)")
        if high <= low:
            gaps.append(f"{hpa.ref}: maxReplicas {high} is not above minReplicas {low}, so it cannot scale")
    return gaps


def _cpu_metrics(hpa: K8sObject) -> list[dict]:
    metrics = []
    for metric in hpa.spec.get("metrics") or []:
        for source in ("resource", "containerResource"):
            if metric.get("type", "").lower() == source.lower() and (metric.get(source) or {}).get("name") == "cpu":
                metrics.append(metric[source])
    return metrics


@rule("HPA-02", kinds("HorizontalPodAutoscaler"))
def cpu_requests_for_utilisation(bundle: Bundle) -> list[str]:
    gaps = []
    for hpa, pod in scaled_workloads(bundle):
        if not hpa.spec.get("metrics"):
            gaps.append(f"{hpa.ref}: no metrics, so it scales on nothing")
        elif not _cpu_metrics(hpa):
            gaps.append(f"{hpa.ref}: does not scale on CPU, the load a chat completion puts on the pods")
        if pod is None or not _cpu_metrics(hpa):
            continue
        for c in pod.containers(("containers",)):
            if quantity(((c.spec.get("resources") or {}).get("requests") or {}).get("cpu")) is None:
                gaps.append(f"{c.ref}: no CPU request, so {hpa.ref} cannot compute CPU utilisation")
    return gaps


@rule("HPA-03", kinds("HorizontalPodAutoscaler"))
def scale_up_possible(bundle: Bundle) -> list[str]:
    gaps = []
    for hpa, pod in scaled_workloads(bundle):
        scale_up = (hpa.spec.get("behavior") or {}).get("scaleUp") or {}
        if scale_up.get("selectPolicy") == "Disabled":
            gaps.append(f"{hpa.ref}: behavior.scaleUp.selectPolicy is Disabled")
        for i, policy in enumerate(scale_up.get("policies") or []):
            if int(policy.get("value", 0)) <= 0:
                gaps.append(f"{hpa.ref}: behavior.scaleUp.policies[{i}] adds {policy.get('value')} pods")
        if int(scale_up.get("stabilizationWindowSeconds", 0)) > 300:
            gaps.append(f"{hpa.ref}: scale-up waits {scale_up['stabilizationWindowSeconds']}s before reacting to load")
        if pod is None:
            continue
        for metric in _cpu_metrics(hpa):
            target = (metric.get("target") or {}).get("averageUtilization")
            if target is None:
                continue
            if int(target) <= 0:
                gaps.append(f"{hpa.ref}: CPU averageUtilization {target}% is not positive")
            # Utilisation is pod usage over pod requests, so the ceiling is the sum of limits over
            # the sum of requests; an unlimited container lifts the ceiling.
            requests, limits = 0.0, 0.0
            for c in pod.containers(("containers",)):
                resources = c.spec.get("resources") or {}
                request = quantity((resources.get("requests") or {}).get("cpu"))
                limit = quantity((resources.get("limits") or {}).get("cpu"))
                if limit is None:
                    break
                requests, limits = requests + (request or limit), limits + limit
            else:
                if requests and int(target) >= 100 * limits / requests:
                    gaps.append(f"{hpa.ref}: CPU target {target}% can never be reached: the containers of "
                                f"{pod.owner.ref} are limited to {100 * limits / requests:.0f}% of their requests")
    return gaps
