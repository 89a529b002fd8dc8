"""The cluster half of a fault: each step changes one thing and returns how to undo it.

Steps of fixtures/faults.yaml `cluster:`
    apply:  a manifest (mapping)                          undo: delete it
    delete: {kind, name, namespace}                       undo: create the saved copy
    scale:  {kind, name, namespace, replicas}             undo: scale back and wait
    patch:  {kind, name, namespace, type, patch}          undo: replace with the saved copy
    call:   the name of an action below (with its args)   undo: its own

Undo steps run in reverse order, each even when an earlier one failed, so one broken undo does not
leave the rest of the catalogue's cluster changed.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import yaml

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.live.access.kube import Kube
from conformance.live.platform import push

Undo = Callable[[], None]
WAIT = 300.0
VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")


def _saved(kube: Kube, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    obj = kube.json("get", kind, name, *(["-n", namespace] if namespace else []))
    obj.pop("status", None)
    for key in VOLATILE:
        obj["metadata"].pop(key, None)
    (obj["metadata"].get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return obj


def _ns(spec: dict[str, Any]) -> list[str]:
    return ["-n", spec["namespace"]] if spec.get("namespace") else []


def _pushing(env, kind: str, change: Callable[[], object], what: str) -> None:
    # A short wait: a step's change to another namespace's policy pushes nothing to the proxies the checks use.
    push.pushing(env, change, what, mesh=push.is_istio(kind), timeout=30)


def apply(env, manifest: dict[str, Any]) -> Undo:
    meta = manifest["metadata"]
    what = f"fault object {manifest['kind']} {meta['name']}"
    _pushing(env, manifest["kind"], lambda: env.kube.apply(yaml.safe_dump(manifest), what=what,
                                                           manager="cortex-conformance-fault"), what)

    def undo() -> None:
        _pushing(env, manifest["kind"], lambda: env.kube.run("delete", manifest["kind"], meta["name"], *_ns(meta),
                                                             "--ignore-not-found"), f"removal of {what}")
    return undo


def delete(env, spec: dict[str, Any]) -> Undo:
    saved = _saved(env.kube, spec["kind"], spec["name"], spec.get("namespace"))
    what = f"{spec['kind']} {spec['name']}"
    _pushing(env, spec["kind"], lambda: env.kube.run("delete", spec["kind"], spec["name"], *_ns(spec),
                                                     "--ignore-not-found"), f"deletion of {what}")

    def undo() -> None:
        _pushing(env, spec["kind"], lambda: env.kube.run("create", "-f", "-", input=json.dumps(saved)),
                 f"restored {what}")
    return undo


def scale(env, spec: dict[str, Any]) -> Undo:
    target = f"{spec['kind']}/{spec['name']}"
    before = env.kube.json("get", target, *_ns(spec))["spec"].get("replicas", 1)
    env.kube.run("scale", target, *_ns(spec), f"--replicas={spec['replicas']}")
    if spec["replicas"] == 0:
        # Gone means gone: the checks must not run while the last pod still answers.
        env.kube.run("wait", "--for=delete", "pods", "-l", spec["selector"], *_ns(spec), f"--timeout={int(WAIT)}s",
                     check=False, timeout=WAIT + 30) if spec.get("selector") else None

    def undo() -> None:
        env.kube.run("scale", target, *_ns(spec), f"--replicas={before}")
        env.kube.rollout(spec["namespace"], target, timeout=WAIT)
    return undo


def patch(env, spec: dict[str, Any]) -> Undo:
    saved = _saved(env.kube, spec["kind"], spec["name"], spec.get("namespace"))
    body = spec["patch"] if isinstance(spec["patch"], str) else json.dumps(spec["patch"])
    what = f"patched {spec['kind']} {spec['name']}"
    _pushing(env, spec["kind"], lambda: env.kube.run("patch", spec["kind"], spec["name"], *_ns(spec),
                                                     f"--type={spec.get('type', 'merge')}", "-p", body), what)
    if spec["kind"].lower() in ("daemonset", "deployment"):
        env.kube.rollout(spec["namespace"], f"{spec['kind'].lower()}/{spec['name']}", timeout=WAIT)

    def undo() -> None:
        _pushing(env, spec["kind"], lambda: env.kube.run("replace", "-f", "-", input=json.dumps(saved)),
                 f"restored {spec['kind']} {spec['name']}")
        if spec["kind"].lower() in ("daemonset", "deployment"):
            env.kube.rollout(spec["namespace"], f"{spec['kind'].lower()}/{spec['name']}", timeout=WAIT)
    return undo


# --- named actions ----------------------------------------------------------------------------------


def _nodes(env) -> list[str]:
    if env.cluster_phase is None or env.cluster_phase.kind is None:
        raise ConformanceError("this fault changes the nodes, which only our own kind cluster allows")
    result = env.cluster_phase.kind._kind("get", "nodes", f"--name={env.cluster_phase.kind.name}", timeout=60)
    return result.stdout.split()


def _on_nodes(env, argv: list[str]) -> None:
    for node in _nodes(env):
        result = subprocess.run(["docker", "exec", node, *argv], capture_output=True, text=True, check=False,
                                env=dict(os.environ), timeout=120)
        if result.returncode != 0:
            raise ConformanceError(f"on node {node}, {' '.join(argv)} failed: {result.stderr.strip()[-200:]}")


def cni_enforcement_off(env) -> Undo:
    """Stop kube-router's NetworkPolicy firewall and flush the rules it left, on every node."""
    undo_patch = patch(env, {"kind": "DaemonSet", "name": "kube-router", "namespace": "kube-system", "type": "json",
                             "patch": [{"op": "replace", "path": "/spec/template/spec/containers/0/args/1",
                                        "value": "--run-firewall=false"}]})
    for chain in ("KUBE-ROUTER-FORWARD", "KUBE-ROUTER-INPUT", "KUBE-ROUTER-OUTPUT"):
        _on_nodes(env, ["iptables", "-F", chain])
    return undo_patch


def _vault_api(env, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    """One call of the dev Vault's HTTP API with the root token (in a header, never in an argv)."""
    import urllib.error
    import urllib.request

    token = base64.b64decode(env.kube.run("get", "secret", "vault-dev-root-token", "-n", "vault", "-o",
                                          "jsonpath={.data.token}").stdout).decode()
    with env.kube.port_forward("vault", "service/vault", 8200) as port:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/{path}", method=method,
                                         headers={"X-Vault-Token": token},
                                         data=None if body is None else json.dumps(body).encode())
        try:
            urllib.request.urlopen(request, timeout=15).close()  # noqa: S310 - loopback port-forward
        except (urllib.error.URLError, OSError) as exc:
            raise ConformanceError(f"Vault refused {method} /v1/{path}: {exc}") from None


def vault_sealed(env) -> Undo:
    """Seal the dev Vault; the undo starts a fresh one, bootstraps it again and gives the pods new agents."""
    _vault_api(env, "PUT", "sys/seal")

    def undo() -> None:
        pods = env.kube.run("get", "pods", "-n", "vault", "-l", "app.kubernetes.io/name=vault", "-o", "name").stdout
        env.kube.run("delete", *pods.split(), "-n", "vault", "--wait=true", timeout=WAIT)
        env.kube.rollout("vault", "deployment/vault", timeout=WAIT)
        env.workload.vault_result = env.workload._bootstrap_vault()
        env.workload.restart()
    return undo


def vault_role(env, role: str, service_accounts: tuple[str, ...] = ("*",),
               namespaces: tuple[str, ...] | None = None) -> Undo:
    """Another Kubernetes-auth role in Vault, with vault.yaml's policy and audience but bound as given (by
    default every account of the workload's namespace; Vault refuses "*" for both names and namespaces):
    a role a manifest may name by mistake."""
    contract = fixtures.expectations("vault")
    bound = list(namespaces) if namespaces else [fixtures.workload().namespace]
    _vault_api(env, "POST", f"auth/kubernetes/role/{role}", {
        "bound_service_account_names": list(service_accounts), "bound_service_account_namespaces": bound,
        "policies": [contract["policy"]], "audience": contract["audience"], "ttl": "1h"})

    def undo() -> None:
        _vault_api(env, "DELETE", f"auth/kubernetes/role/{role}")
    return undo


def jwks_rotated(env) -> Undo:
    """The identity provider rotates its keys: the RequestAuthentication gets a JWKS of a new key only."""
    from conformance.live.evidence import tokens

    spec = fixtures.workload()
    rotated = tokens.generate_keys().jwks_json()
    names = env.kube.run("get", "requestauthentication", "-n", spec.namespace, "-o", "name").stdout.split()
    undos = []
    for name in names:
        current = env.kube.json("get", name, "-n", spec.namespace)
        ops = [{"op": "replace", "path": f"/spec/jwtRules/{i}/jwks", "value": rotated}
               for i, rule in enumerate(current["spec"].get("jwtRules") or []) if "jwks" in rule]
        if ops:
            undos.append(patch(env, {"kind": "RequestAuthentication", "name": name.split("/", 1)[1],
                                     "namespace": spec.namespace, "type": "json", "patch": ops}))
    if not undos:
        raise ConformanceError("no RequestAuthentication carries the run's JWKS to rotate")

    def undo() -> None:
        for step in reversed(undos):
            step()
    return undo


def certificate_for_other_host(env, host: str) -> Undo:
    """The gateway's TLS credential replaced by a certificate (from the run's CA) for another host."""
    from conformance.live.workload import overlay

    gateway = fixtures.workload().gateway
    undos = []
    for namespace, name in env.workload.overlay.tls_secrets:
        other = overlay.generate_tls((host,), ca=env.workload.overlay.tls)  # the run's CA: only the host is wrong
        undos.append(patch(env, {"kind": "Secret", "name": name, "namespace": namespace, "type": "merge", "patch": {
            "data": {"tls.crt": base64.b64encode(other.cert_pem.encode()).decode(),
                     "tls.key": base64.b64encode(other.key_pem.encode()).decode()}}}))
    if not undos:
        raise ConformanceError(f"no TLS credential of the run in {gateway.namespace} to replace")

    def undo() -> None:
        for step in reversed(undos):
            step()
    return undo


def mutable_tag(env, role: str, tag: str = "latest") -> Undo:
    """Tag one of the run's images as `<name>:latest` on every node, so a pod may name it."""
    ref = env.images.refs[role]
    mutable = f"{ref.rsplit(':', 1)[0]}:{tag}"
    _on_nodes(env, ["ctr", "-n", "k8s.io", "images", "tag", "--force", _containerd_name(ref),
                    _containerd_name(mutable)])

    def undo() -> None:
        _on_nodes(env, ["ctr", "-n", "k8s.io", "images", "rm", _containerd_name(mutable)])
    return undo


def _containerd_name(ref: str) -> str:
    """containerd's fully qualified name for a reference (docker.io/library/ for short names)."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def _mesh_config(env, old: str, new: str, marker: str, what: str, *, faulted_shows: bool = True) -> Undo:
    """Replace `old` with `new` in the mesh config (ConfigMap istio-system/istio, key `mesh`) and wait
    until the proxies run it: the gateway's Envoy config shows `marker` while the fault holds (or, with
    faulted_shows False, stops showing it), and the opposite after the undo."""
    saved = _saved(env.kube, "configmap", "istio", "istio-system")
    mesh = saved["data"]["mesh"]
    if old not in mesh:
        raise ConformanceError(f"the mesh config has no {old!r} to change for {what}")
    env.kube.run("patch", "configmap", "istio", "-n", "istio-system", "--type=merge", "-p",
                 json.dumps({"data": {"mesh": mesh.replace(old, new)}}))
    _pushed(env, marker, present=faulted_shows, what=what)

    def undo() -> None:
        env.kube.run("replace", "-f", "-", input=json.dumps(saved))
        _pushed(env, marker, present=not faulted_shows, what=what)
    return undo


def _pushed(env, marker: str, *, present: bool, what: str) -> None:
    """istiod pushes a changed mesh config to every proxy; cortex-api's sidecars' config dumps say when
    they run it (the workload's proxies are the ones the checks look through)."""
    from conformance.wait import wait_until

    def shows() -> bool:
        dumps = list(push.sidecar_dumps(env).values())
        return bool(dumps) and all(d and (marker in d) == present for d in dumps)

    wait_until(f"cortex-api's sidecars to {'run' if present else 'drop'} the changed {what}", shows, timeout=WAIT,
               interval=3)
    push.DRAIN.pushed()


def otel_provider_nowhere(env) -> Undo:
    """The mesh's otel-tracing provider points at a Service that does not exist: spans go nowhere."""
    # istiod configures no tracer for a provider whose Service it cannot find: the collector's address
    # leaves the proxies' config.
    return _mesh_config(env, "opentelemetry-collector.observability.svc.cluster.local",
                        "nowhere.observability.svc.cluster.local",
                        '"cluster_name": "outbound|4317||opentelemetry-collector.observability.svc.cluster.local"',
                        "tracing provider", faulted_shows=False)


def access_log_with_tokens(env) -> Undo:
    """The token-free access log format gains the Authorization header and the query string."""
    return _mesh_config(env, "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                        "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(AUTHORIZATION)%", "REQ(AUTHORIZATION)",
                        "access log format")


CALLS: dict[str, Callable[..., Undo]] = {
    "otel-provider-nowhere": otel_provider_nowhere,
    "access-log-with-tokens": access_log_with_tokens,
    "cni-enforcement-off": cni_enforcement_off,
    "vault-sealed": vault_sealed,
    "vault-role": vault_role,
    "jwks-rotated": jwks_rotated,
    "certificate-for-other-host": certificate_for_other_host,
    "mutable-tag": mutable_tag,
}


def run_step(env, step: dict[str, Any]) -> Undo:
    if "apply" in step:
        return apply(env, step["apply"])
    if "delete" in step:
        return delete(env, step["delete"])
    if "scale" in step:
        return scale(env, step["scale"])
    if "patch" in step:
        return patch(env, step["patch"])
    call = step["call"]
    name, args = (call, {}) if isinstance(call, str) else (call["name"], {k: v for k, v in call.items() if k != "name"})
    if name not in CALLS:
        raise ConformanceError(f"unknown fault action {name}; known: {', '.join(CALLS)}")
    return CALLS[name](env, **args)
