"""istiod's pushes of Istio config to the proxies the live checks look through (cortex-api's sidecars and
the ingress gateway): which kinds it pushes, when a push has reached every replica, and the drain that
follows. A check run between a change and its push would judge the config before the change.

Used wherever an Istio object changes under a running workload: a fault and its undo, and a reused
workload whose overlay changed. `env` is anything that holds the cluster's `kube`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from conformance import fixtures, paths
from conformance.errors import WaitTimeout
from conformance.live.evidence import observe
from conformance.wait import wait_until

# The kinds istiod turns into proxy config: a change to one of them reaches the proxies by a push. Judged
# by kind, because a delete or patch step names only the kind (a Gateway API Gateway is pushed too).
ISTIO_KINDS = {"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Telemetry", "DestinationRule",
               "VirtualService", "Gateway", "Sidecar", "ServiceEntry", "EnvoyFilter", "WasmPlugin", "ProxyConfig",
               "WorkloadEntry", "WorkloadGroup"}


def is_istio(kind: str | None) -> bool:
    """Whether a change to an object of this kind reaches the proxies by an istiod push."""
    return kind in ISTIO_KINDS


def any_istio(keys) -> bool:
    """Whether any of these changed objects (kind/namespace/name keys) reaches the proxies by a push."""
    return any(is_istio(key.split("/", 1)[0]) for key in keys)


def pushing(env, change: Callable[[], object], what: str, *, mesh: bool, timeout: float = 60.0,
            said: Callable[[str], None] | None = None) -> None:
    """Make `change`; when it changes Istio config (`mesh`), wait until the proxies the checks look through
    run the result: istiod pushes a change seconds after the API server has it, and checks run in between
    would judge the config before it.

    A push that does not come within `timeout` is said (to `said`, if given), not raised: a change no proxy
    the checks look through takes (a policy selecting nothing, another namespace's) pushes nothing to them,
    and the checks judge what the proxies run, so they still run and report what they see."""
    if not mesh:
        change()
        return
    before = proxy_versions(env)
    change()
    try:
        wait_mesh_pushed(env, before, what, timeout=timeout)
    except WaitTimeout as exc:
        if said is not None:
            said(str(exc))


def config_dump(env, namespace: str, pod: str) -> str:
    """A proxy's config dump (Envoy's admin API through pilot-agent); empty when the exec fails."""
    return env.kube.run("exec", "-n", namespace, pod, "-c", "istio-proxy", "--", "pilot-agent", "request", "GET",
                        "config_dump", check=False, timeout=60).stdout


def _dumps(env, pods: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Key -> config dump of each (namespace, pod), fetched side by side: each is one `kubectl exec` that
    mostly waits, and a push wait polls them every second."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(config_dump, env, namespace, pod) for key, (namespace, pod) in pods.items()}
        return {key: future.result() for key, future in futures.items()}


def _sidecar_pods(env) -> dict[str, tuple[str, str]]:
    namespace = fixtures.workload().namespace
    return {f"sidecar:{p['metadata']['name']}": (namespace, p["metadata"]["name"])
            for p in observe.api_pods(env.kube) if observe.is_ready(p)}


def sidecar_dumps(env) -> dict[str, str]:
    """Each Ready cortex-api pod's sidecar config dump."""
    return _dumps(env, _sidecar_pods(env))


GATEWAY_SELECTOR = "app.kubernetes.io/name=istio-ingressgateway"


def _gateway_pods(env) -> dict[str, tuple[str, str]]:
    namespace = fixtures.workload().gateway.namespace
    pods = env.kube.json("get", "pods", "-n", namespace, "-l", GATEWAY_SELECTOR).get("items") or []
    return {f"gateway:{namespace}/{p['metadata']['name']}": (namespace, p["metadata"]["name"]) for p in pods}


def proxy_versions(env) -> dict[str, str]:
    """The listener, cluster and route config versions of the proxies the checks look through (cortex-api's
    sidecars and the ingress gateway): istiod stamps every push it sends. A policy or Telemetry change
    reaches the sidecars' listeners, a DestinationRule their clusters, a Gateway only the gateway's routes."""
    versions = {}
    for pod, dump in _dumps(env, {**_sidecar_pods(env), **_gateway_pods(env)}).items():
        try:
            configs = json.loads(dump).get("configs") or []
        except json.JSONDecodeError:
            continue
        stamps = {c.get("@type", "").rsplit(".", 1)[-1]: c for c in configs}
        listeners, clusters = (stamps.get(k, {}).get("version_info", "") for k in ("ListenersConfigDump",
                                                                                  "ClustersConfigDump"))
        # Routes carry no version at all (measured on Istio 1.31: RDS entries hold only `last_updated`), and a
        # Gateway change (the HTTP redirect) reaches nothing else.
        routes = ",".join(sorted(r.get("last_updated", "") for r in
                                 stamps.get("RoutesConfigDump", {}).get("dynamic_route_configs") or []))
        if listeners or clusters:
            versions[pod] = f"{listeners}|{clusters}|{routes}"
    return versions


def judge_pushed(before: dict[str, str], now: dict[str, str]) -> bool:
    """Whether a push reached the proxies: one of them runs a newer config, and so does every other replica
    of its kind ("sidecar:" or "gateway:"): replicas get the same config, and a check's requests may go
    through any of them, so one replica updated is not the change applied."""
    changed = {pod for pod, version in now.items() if before.get(pod) != version}
    kinds = {pod.split(":", 1)[0] for pod in changed}
    return bool(changed) and all(pod in changed for pod in now if pod.split(":", 1)[0] in kinds)


def wait_mesh_pushed(env, before: dict[str, str], what: str, timeout: float = 60.0) -> None:
    """Until istiod's push of a change reaches the proxies the checks look through (judge_pushed). A change
    reaches the proxies a few seconds after the API server has it; checks run earlier would judge the
    previous config. The drain of the connections opened before it is DRAIN's."""
    def pushed() -> bool:
        return judge_pushed(before, proxy_versions(env))

    wait_until(f"the proxies to run the {what}", pushed, timeout=timeout, interval=1)
    DRAIN.pushed()


class Drain:
    """Connections opened before a push keep the old filter chain until the proxies' drain closes them: no
    check may run until the drain of the last push is over. Only the checks wait for it, so an undo's drain
    runs while the next fault is applied."""

    def __init__(self) -> None:
        self.until = 0.0

    def pushed(self) -> None:
        self.until = time.monotonic() + drain_seconds() + 1

    def settle(self) -> float:
        """Sleep out the rest of the last push's drain; returns the seconds slept."""
        left = max(0.0, self.until - time.monotonic())
        time.sleep(left)
        return left


DRAIN = Drain()


def drain_seconds() -> float:
    """The proxies' drain after a listener update: meshConfig.defaultConfig.drainDuration of the install."""
    values = fixtures.load_file(paths.FIXTURES / "istio" / "istiod.yaml")
    duration = str(values["meshConfig"]["defaultConfig"]["drainDuration"])
    return float(duration.removesuffix("s"))
