"""PROBE: liveness and readiness everywhere, on declared ports, distinct, with sane timing."""

from __future__ import annotations

from conformance import fixtures
from conformance.static import mesh
from conformance.static.manifests import Bundle, Container
from conformance.static.rules import WORKLOADS, rule

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# Kubernetes defaults, used when a probe leaves a field out.
DEFAULTS = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3, "initialDelaySeconds": 0}


def _app_containers(bundle: Bundle):
    # Init containers run to completion and take no probes.
    for pod in bundle.pods:
        yield from pod.containers(("containers",))


def _setting(probe: dict, key: str) -> int:
    return int(probe.get(key, DEFAULTS[key]))


@rule("PROBE-01", WORKLOADS)
def liveness_and_readiness_present(bundle: Bundle) -> list[str]:
    gaps = []
    for c in _app_containers(bundle):
        for probe in ("livenessProbe", "readinessProbe"):
            if not c.spec.get(probe):
                gaps.append(f"{c.ref}: {probe} is missing")
    return gaps


def _probe_port(probe: dict):
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            return handler, (probe[handler] or {}).get("port")
    return None, None


def _declares(container: Container, port) -> bool:
    if isinstance(port, str) and not port.isdigit():
        return any(p.get("name") == port for p in container.ports)
    return any(p.get("containerPort") == int(port) for p in container.ports)


@rule("PROBE-02", WORKLOADS)
def probes_on_declared_ports(bundle: Bundle) -> list[str]:
    gaps = []
    for pod in bundle.pods:
        rewrite = (pod.annotations.get("sidecar.istio.io/rewriteAppHTTPProbers")
                   or pod.labels.get("sidecar.istio.io/rewriteAppHTTPProbers"))
        if str(rewrite).lower() == "false" and mesh.injection(bundle, pod) is None:
            gaps.append(f"{pod.owner.ref}: sidecar.istio.io/rewriteAppHTTPProbers is false, so under STRICT mTLS "
                        "the kubelet's plaintext probes are refused and the pods never become Ready")
    for c in _app_containers(bundle):
        for name in PROBES:
            probe = c.spec.get(name)
            if not probe:
                continue
            handler, port = _probe_port(probe)
            if handler is None:
                if "exec" not in probe:
                    gaps.append(f"{c.ref}: {name} has no handler")
                continue
            if port is None:
                gaps.append(f"{c.ref}: {name}.{handler} has no port")
            elif not _declares(c, port):
                gaps.append(f"{c.ref}: {name}.{handler}.port {port} is not a port the container declares")
    return gaps


def _without_timing(probe: dict) -> dict:
    return {k: v for k, v in probe.items() if k not in DEFAULTS and k not in ("successThreshold",
                                                                             "terminationGracePeriodSeconds")}


@rule("PROBE-03", WORKLOADS)
def readiness_distinct_from_liveness(bundle: Bundle) -> list[str]:
    gaps = []
    for c in _app_containers(bundle):
        readiness, liveness = c.spec.get("readinessProbe"), c.spec.get("livenessProbe")
        if not readiness or not liveness:
            continue
        if readiness == liveness:
            gaps.append(f"{c.ref}: readinessProbe is identical to livenessProbe, so a busy pod is restarted "
                        "instead of taken out of rotation")
        elif _without_timing(readiness) == _without_timing(liveness) and (
                _setting(readiness, "failureThreshold") * _setting(readiness, "periodSeconds")
                >= _setting(liveness, "failureThreshold") * _setting(liveness, "periodSeconds")):
            gaps.append(f"{c.ref}: readinessProbe checks the same endpoint as livenessProbe but reacts no "
                        "sooner, so a failing pod is restarted before it leaves the endpoints")
        if _setting(readiness, "periodSeconds") > 10:
            gaps.append(f"{c.ref}: readinessProbe.periodSeconds {readiness['periodSeconds']} leaves a broken pod "
                        "in rotation for too long (at most 10)")
    return gaps


@rule("PROBE-04", WORKLOADS)
def liveness_timing_sane(bundle: Bundle) -> list[str]:
    expect = fixtures.expectations("workload")
    slow, budget = set(expect["slow_starting_containers"]), expect["min_startup_budget_seconds"]
    gaps = []
    for c in _app_containers(bundle):
        for name in PROBES:
            probe = c.spec.get(name)
            if probe and _setting(probe, "timeoutSeconds") >= _setting(probe, "periodSeconds"):
                gaps.append(f"{c.ref}: {name}.timeoutSeconds {_setting(probe, 'timeoutSeconds')} is not below "
                            f"periodSeconds {_setting(probe, 'periodSeconds')}")
        liveness = c.spec.get("livenessProbe")
        if liveness:
            threshold = _setting(liveness, "failureThreshold")
            window = threshold * _setting(liveness, "periodSeconds")
            if threshold < 3 or window < 15:
                gaps.append(f"{c.ref}: livenessProbe restarts after {threshold} failure(s) in {window}s; one "
                            "slow garbage collection or network blip must not kill the container (>= 3 and >= 15s)")
        startup = c.spec.get("startupProbe")
        if c.name in slow:
            if not startup:
                gaps.append(f"{c.ref}: starts slowly but has no startupProbe, so liveness can kill it during start-up")
            else:
                window = _setting(startup, "failureThreshold") * _setting(startup, "periodSeconds")
                if window < budget:
                    gaps.append(f"{c.ref}: startupProbe allows {window}s to start, less than {budget}s")
    return gaps
