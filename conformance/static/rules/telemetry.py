"""TEL: tracing on at a bounded rate, spans that can leave the pod, token-free access logs, metrics for
Prometheus only. Expected values come from fixtures/expectations/telemetry.yaml."""

from __future__ import annotations

from typing import Any

from conformance import fixtures
from conformance.static import mesh
from conformance.static.manifests import Bundle, PodTemplate, pod_template_of
from conformance.static.rules import kinds, rule
from conformance.static.rules.network import model


def _expected() -> dict[str, Any]:
    return fixtures.expectations("telemetry")


def _workload_pods(bundle: Bundle) -> list[PodTemplate]:
    name = fixtures.workload().name
    return [pod for d in bundle.of_kind("Deployment") if d.name == name and (pod := pod_template_of(d)) is not None]


def _telemetries(bundle: Bundle, pod: PodTemplate) -> list:
    return [t for t in bundle.of_kind("Telemetry") if mesh.applies_to(t, pod)]


def _no_workload(bundle: Bundle) -> list[str]:
    return [] if _workload_pods(bundle) else [f"no Deployment {fixtures.workload().name} in {bundle.name}: nothing "
                                              "to hold to the telemetry expectations"]


@rule("TEL-01")
def tracing_on_at_bounded_rate(bundle: Bundle) -> list[str]:
    spec = _expected()["tracing"]
    low, high = spec["sampling_percent"]["min"], spec["sampling_percent"]["max"]
    gaps = _no_workload(bundle)
    for pod in _workload_pods(bundle):
        entries = [(t, entry) for t in _telemetries(bundle, pod) for entry in t.spec.get("tracing") or []]
        ours = [(t, e) for t, e in entries if spec["provider"] in {p.get("name") for p in e.get("providers") or []}]
        if not ours:
            gaps.append(f"{pod.owner.ref}: no Telemetry traces its pods through the provider {spec['provider']}")
        for telemetry, entry in ours:
            rate = entry.get("randomSamplingPercentage")
            if entry.get("disableSpanReporting"):
                gaps.append(f"{telemetry.ref}: disableSpanReporting is true, so no span leaves the proxy")
            if rate is None:
                gaps.append(f"{telemetry.ref}: randomSamplingPercentage is not set, so the rate is the mesh's "
                            f"default and not held to {low}-{high} %")
            elif not low <= float(rate) <= high:
                gaps.append(f"{telemetry.ref}: randomSamplingPercentage {rate} is outside {low}-{high} %")
    return gaps


@rule("TEL-02")
def spans_reach_the_collector(bundle: Bundle) -> list[str]:
    """The application is told where to export, and the pod's egress lets the sidecar's and its spans out."""
    spec = _expected()["tracing"]
    gaps = _no_workload(bundle)
    for pod in _workload_pods(bundle):
        app = next((c for c in pod.containers() if c.name == fixtures.workload().name), None)
        env = {e.get("name"): e.get("value", "") for e in (app.spec.get("env") or [])} if app else {}
        endpoint = env.get(spec["app_endpoint_env"], "")
        if ".observability." not in endpoint and "opentelemetry-collector" not in endpoint:
            gaps.append(f"{pod.owner.ref} container {fixtures.workload().name}: {spec['app_endpoint_env']} is "
                        f"{endpoint or 'not set'}, not the collector, so the application's spans go nowhere")
    cells = {(c.source, c.destination, str(c.port)): c for c in model(bundle).cells()}
    for port in spec["collector_ports"]:
        cell = cells.get((fixtures.workload().name, spec["collector_group"], port))
        if cell is not None and not cell.allowed:
            gaps.append(f"NetworkPolicy of {fixtures.workload().name}: egress to {spec['collector_group']} {port} is "
                        "blocked, so spans never leave the pod")
    return gaps


@rule("TEL-03")
def access_logs_without_tokens(bundle: Bundle) -> list[str]:
    providers = set(_expected()["access_logging"]["providers"])
    gaps = _no_workload(bundle)
    for pod in _workload_pods(bundle):
        entries = [(t, e) for t in _telemetries(bundle, pod) for e in t.spec.get("accessLogging") or []]
        if not entries:
            gaps.append(f"{pod.owner.ref}: no Telemetry turns access logging on for its pods")
        for telemetry, entry in entries:
            named = {p.get("name") for p in entry.get("providers") or []}
            if entry.get("disabled"):
                gaps.append(f"{telemetry.ref}: accessLogging is disabled")
            elif not named:
                gaps.append(f"{telemetry.ref}: accessLogging names no provider, so the mesh default's format "
                            "(which logs the query string) applies")
            for name in sorted(named - providers):
                gaps.append(f"{telemetry.ref}: access log provider {name} is not one whose format is known to leave "
                            f"out tokens ({', '.join(sorted(providers))})")
    return gaps


@rule("TEL-04")
def metrics_for_prometheus_only(bundle: Bundle) -> list[str]:
    spec = _expected()["metrics"]
    gaps = _no_workload(bundle)
    for pod in _workload_pods(bundle):
        merger = next((c for c in pod.containers() if c.name == "exporter-merger"), None)
        urls = {e.get("value", "") for e in (merger.spec.get("env") or []) if e.get("name") == "MERGER_URLS"} \
            if merger else set()
        if not any(spec["sidecar_stats_url"] in u.split() for u in urls):
            gaps.append(f"{pod.owner.ref} container exporter-merger: MERGER_URLS does not merge the sidecar's "
                        f"statistics ({spec['sidecar_stats_url']}), so Prometheus gets no mesh request metrics")
        for ap in mesh.allow_policies(bundle, pod):
            for i, ap_rule in enumerate(ap.spec.get("rules") or []):
                if not mesh.rule_reaches(ap_rule, spec["path"], spec["port"]):
                    continue
                sources = [f.get("source") or {} for f in ap_rule.get("from") or []]
                principals = {p for s in sources for p in s.get("principals") or []}
                # Sources are OR-ed and a source's fields AND-ed: each source must name only Prometheus;
                # what else it requires (a namespace, an address) only narrows it further.
                wanted = {spec["prometheus_principal"]}
                if not sources or any(set(s.get("principals") or []) != wanted for s in sources):
                    shown = ", ".join(sorted(principals)) or "any source"
                    gaps.append(f"{ap.ref} rules[{i}]: admits {shown} to {spec['path']} on port {spec['port']}, not "
                                f"only {spec['prometheus_principal']}")
    return gaps


# Request headers that carry credentials: copied into a span tag or a metric label they reach everyone who
# reads traces or dashboards.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                                "x-auth-token", "x-forwarded-access-token"})


@rule("TEL-03", kinds("Telemetry"))
def no_credentials_in_telemetry(bundle: Bundle) -> list[str]:
    """No Telemetry copies a credential header into span tags or metric labels (the access-log rule's twin)."""
    gaps = []
    for tel in bundle.of_kind("Telemetry"):
        for i, entry in enumerate(tel.spec.get("tracing") or []):
            for name, tag in ((entry or {}).get("customTags") or {}).items():
                header = str(((tag or {}).get("header") or {}).get("name", ""))
                if header.lower() in CREDENTIAL_HEADERS:
                    gaps.append(f"{tel.ref}: tracing[{i}].customTags[{name}] copies the {header} header into every "
                                "span, where whoever reads traces can replay it")
        for i, entry in enumerate(tel.spec.get("metrics") or []):
            for override in (entry or {}).get("overrides") or []:
                for name, tag in ((override or {}).get("tagOverrides") or {}).items():
                    value = str((tag or {}).get("value", "")).lower()
                    if any(f"'{h}'" in value or f'"{h}"' in value for h in CREDENTIAL_HEADERS):
                        gaps.append(f"{tel.ref}: metrics[{i}] tag {name} copies a credential header into a metric "
                                    "label")
    return gaps
