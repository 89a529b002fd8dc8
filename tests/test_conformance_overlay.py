"""The conformance overlay and the client pods, rendered with real kustomize.

The overlay must differ from `kubectl kustomize overlays/dev` by exactly the stand-in images, the
inline JWKS and the gateway's TLS Secret: every other byte the live checks see is the dev overlay.
The client pods must be admissible under Pod Security restricted and cover the network groups of
fixtures/expectations/network.yaml.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

from conformance import paths
from conformance.errors import InputError
from conformance.live.evidence import tokens
from conformance.live.workload import overlay
from conformance.static import manifests

REPO = paths.REPO
STANDINS = {
    "cortex-api": "localhost/cortex-standin/cortex-api:0f3c9a1e",
    "redis-proxy": "localhost/cortex-standin/redis-proxy:0f3c9a1e",
    "exporter-merger": "localhost/cortex-standin/exporter-merger:0f3c9a1e",
    "chrome-devtools-protocol-server": "localhost/cortex-standin/cdp@sha256:" + "ab" * 32,
}
NETWORK = yaml.safe_load((REPO / "fixtures" / "expectations" / "network.yaml").read_text())
# Groups the cluster itself provides (DNS, istiod, Vault); the fixtures provide the others.
CLUSTER_PROVIDED = {"kube-system", "istio-system", "vault", "observability"}
# As a destination, the ingress-gateway group is the real gateway, which listens on its ports.
GATEWAY_PROVIDED = {"ingress-gateway"}

Key = tuple[str, str | None, str]


def _index(bundle: manifests.Bundle) -> dict[Key, dict[str, Any]]:
    return {(o.kind, o.namespace, o.name): o.doc for o in bundle.objects}


def _diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf where two documents differ, as (path, old, new); a missing side is None."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(key), new.get(key), f"{path}.{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in _diff(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path, old, new)]


@pytest.fixture(scope="module")
def keys() -> tokens.SigningKeys:
    return tokens.generate_keys()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, keys: tokens.SigningKeys) -> overlay.ConformanceOverlay:
    return overlay.write_overlay(tmp_path_factory.mktemp("conformance-overlay"), images=STANDINS,
                                 jwks=keys.jwks_json())


@pytest.fixture(scope="module")
def dev() -> dict[Key, dict[str, Any]]:
    return _index(manifests.load_overlay(overlay.DEV_OVERLAY))


@pytest.fixture(scope="module")
def conformance(written: overlay.ConformanceOverlay) -> dict[Key, dict[str, Any]]:
    return _index(manifests.load_overlay(written.path))


def _dev_deployment(dev: dict[Key, dict[str, Any]]) -> tuple[Key, list[dict[str, Any]]]:
    key = next(k for k in dev if k[0] == "Deployment" and k[2] == "cortex-api")
    return key, dev[key]["spec"]["template"]["spec"]["containers"]


# --- the conformance overlay --------------------------------------------------------------------


def test_difference_is_exactly_the_replacements(dev: dict[Key, dict[str, Any]],
                                                conformance: dict[Key, dict[str, Any]],
                                                keys: tokens.SigningKeys) -> None:
    """Apart from images, the inline JWKS and the TLS Secret, the overlay renders the dev overlay byte for byte."""
    deployment, containers = _dev_deployment(dev)
    ra = next(k for k in dev if k[0] == "RequestAuthentication")
    expected = {(deployment, f".spec.template.spec.containers[{i}].image", c["image"], STANDINS[c["name"]])
                for i, c in enumerate(containers)}
    expected |= {(ra, ".spec.jwtRules[0].jwksUri", dev[ra]["spec"]["jwtRules"][0]["jwksUri"], None),
                 (ra, ".spec.jwtRules[0].jwks", None, keys.jwks_json())}
    actual = {(key, path, old, new) for key in dev for path, old, new in _diff(dev[key], conformance.get(key))}
    assert actual == expected, (f"unexpected changes: {sorted(map(str, actual - expected))}; "
                                f"missing changes: {sorted(map(str, expected - actual))}")


def test_only_the_tls_secret_is_added(dev: dict[Key, dict[str, Any]], conformance: dict[Key, dict[str, Any]]) -> None:
    """The overlay adds one object, the gateway's TLS Secret, and removes none."""
    assert set(dev) - set(conformance) == set(), "objects of the dev overlay are missing"
    assert set(conformance) - set(dev) == {("Secret", "istio-ingress", "cortex-api-dev-tls")}


def test_issuer_is_unchanged(dev: dict[Key, dict[str, Any]], conformance: dict[Key, dict[str, Any]]) -> None:
    """JWT-01: the inline JWKS leaves the issuer and audiences of every jwtRule as the dev overlay has them."""
    for key in (k for k in dev if k[0] == "RequestAuthentication"):
        for before, after in zip(dev[key]["spec"]["jwtRules"], conformance[key]["spec"]["jwtRules"], strict=True):
            assert (after["issuer"], after.get("audiences")) == (before["issuer"], before.get("audiences"))


def test_valid_token_verifies_against_the_inline_jwks(conformance: dict[Key, dict[str, Any]],
                                                      keys: tokens.SigningKeys) -> None:
    """JWT-01: the run's valid token verifies against the JWKS the overlay inlines, for its issuer and audience."""
    rule = next(v for k, v in conformance.items() if k[0] == "RequestAuthentication")["spec"]["jwtRules"][0]
    token_set = tokens.mint(keys)
    jwk = jwt.PyJWKSet.from_json(rule["jwks"])[keys.kid]
    claims = jwt.decode(token_set.case("valid").token, jwk.key, algorithms=["RS256"],
                        audience=rule["audiences"][0], issuer=rule["issuer"])
    assert claims["sub"]


def test_tls_secret_serves_the_gateway_hosts(conformance: dict[Key, dict[str, Any]],
                                             written: overlay.ConformanceOverlay) -> None:
    """GW-01: the Secret is named as the Gateway's credentialName, holds a key pair for its hosts, chained to the CA."""
    secret = conformance[("Secret", "istio-ingress", "cortex-api-dev-tls")]
    assert secret["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    key = serialization.load_pem_private_key(base64.b64decode(secret["data"]["tls.key"]), password=None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers(), "tls.key does not match tls.crt"
    ca = x509.load_pem_x509_certificate(written.tls.ca_pem.encode())
    for host in written.tls.hosts:
        verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName(host))
        verifier.verify(cert, [])


def test_gateway_hosts_come_from_the_gateway(written: overlay.ConformanceOverlay) -> None:
    """GW-01: the certificate covers the hosts the dev Gateway serves over TLS."""
    assert written.tls.hosts == ("api.dev.cortex.example.com",)


def test_private_key_file_is_owner_only(written: overlay.ConformanceOverlay) -> None:
    """The per-run private key is written 0600 in the work directory."""
    mode = stat.S_IMODE((written.path / "tls" / "cortex-api-dev-tls" / "tls.key").stat().st_mode)
    assert mode == 0o600, f"tls.key has mode {oct(mode)}"


def test_refuses_a_work_dir_inside_the_repository(keys: tokens.SigningKeys) -> None:
    """Per-run files hold a private key, so the repository is refused as a work directory."""
    with pytest.raises(InputError, match="outside"):
        overlay.write_overlay(REPO / "build" / "conformance-overlay", images=STANDINS, jwks=keys.jwks_json())


def test_every_container_needs_a_standin(tmp_path: Path, keys: tokens.SigningKeys) -> None:
    """A missing stand-in image is named, so no private image is left in the rendered overlay."""
    images = {k: v for k, v in STANDINS.items() if k != "redis-proxy"}
    with pytest.raises(InputError, match="missing: \\['redis-proxy'\\]"):
        overlay.write_overlay(tmp_path, images=images, jwks=keys.jwks_json())


def test_unpinned_standin_is_refused(tmp_path: Path, keys: tokens.SigningKeys) -> None:
    """SEC-04: a stand-in ref without tag or digest is refused."""
    with pytest.raises(InputError, match="neither a tag nor a digest"):
        overlay.write_overlay(tmp_path, images={**STANDINS, "cortex-api": "localhost:5000/standin"},
                              jwks=keys.jwks_json())


# --- the client pods ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clients() -> manifests.Bundle:
    return manifests.load_overlay(overlay.CLIENTS)


def _pods(bundle: manifests.Bundle) -> list[manifests.K8sObject]:
    return bundle.of_kind("Pod")


def _restricted_gaps(pod: manifests.K8sObject) -> list[str]:
    """Pod Security Standard restricted (v1.34), the rules a bare pod can break."""
    spec = pod.spec
    pod_sc = spec.get("securityContext") or {}
    gaps = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            gaps.append(flag)
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= allowed_volumes:
            gaps.append(f"volume {volume['name']} of kind {kinds - allowed_volumes}")
    for container in (spec.get("initContainers") or []) + spec["containers"]:
        sc = container.get("securityContext") or {}
        name = container["name"]
        if sc.get("privileged"):
            gaps.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            gaps.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            gaps.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            gaps.append(f"{name}: runs as UID 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            gaps.append(f"{name}: seccomp {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            gaps.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            gaps.append(f"{name}: adds capabilities {caps['add']}")
        if any(p.get("hostPort") for p in container.get("ports") or []):
            gaps.append(f"{name}: hostPort")
        if not sc.get("readOnlyRootFilesystem"):
            gaps.append(f"{name}: root filesystem is writable")
        resources = container.get("resources") or {}
        if not all(resources.get(kind, {}).get(r) for kind in ("requests", "limits") for r in ("cpu", "memory")):
            gaps.append(f"{name}: requests and limits incomplete")
    return gaps


@pytest.mark.parametrize("pod_name", [d["metadata"]["name"] for f in sorted(overlay.CLIENTS.glob("pod_*.yaml"))
                                      for d in [yaml.safe_load(f.read_text())]])
def test_client_pod_meets_restricted(clients: manifests.Bundle, pod_name: str) -> None:
    """SEC-01: every client pod is admissible under Pod Security restricted, with a read-only root and limits."""
    pod = next(p for p in _pods(clients) if p.name == pod_name)
    gaps = _restricted_gaps(pod)
    assert not gaps, f"Pod {pod.namespace}/{pod.name}: {'; '.join(gaps)}"


def test_client_namespaces_enforce_restricted(clients: manifests.Bundle) -> None:
    """SEC-05: the namespaces the fixtures create enforce restricted, so admission proves the pods comply."""
    for ns in clients.of_kind("Namespace"):
        assert ns.labels.get("pod-security.kubernetes.io/enforce") == "restricted", f"Namespace {ns.name}"


@pytest.mark.parametrize("group", [g for g, spec in NETWORK["groups"].items()
                                   if spec.get("namespace") and spec["namespace"] not in CLUSTER_PROVIDED])
def test_network_group_has_a_pod(clients: manifests.Bundle, group: str) -> None:
    """NET-02: every pod group of network.yaml that the cluster does not provide has a fixture pod in it."""
    spec = NETWORK["groups"][group]
    members = [p for p in _pods(clients) if p.namespace == spec["namespace"]
               and all(p.labels.get(k) == v for k, v in spec["labels"].items())]
    assert members, f"no pod in fixtures/clients is in group {group} ({spec['namespace']}, {spec['labels']})"


@pytest.mark.parametrize("group", [g for g, spec in NETWORK["groups"].items()
                                   if spec.get("namespace") and spec["namespace"] not in CLUSTER_PROVIDED
                                   and g not in GATEWAY_PROVIDED])
def test_destination_groups_listen_on_their_ports(clients: manifests.Bundle, group: str) -> None:
    """NET-02: destination pods listen on their group's ports, so "blocked" never means "nothing listens"."""
    spec = NETWORK["groups"][group]
    wanted = {int(p.split("/")[0]) for p in spec["ports"]}
    for pod in (p for p in _pods(clients) if p.namespace == spec["namespace"]
                and all(p.labels.get(k) == v for k, v in spec["labels"].items())):
        env = {e["name"]: e.get("value", "") for c in pod.spec["containers"] for e in c.get("env") or []}
        listening = {int(a.rsplit(":", 1)[1]) for key in ("CLIENT_LISTEN_ADDRS", "REDIS_PROXY_LISTEN_ADDR")
                     for a in env.get(key, "").split()}
        assert wanted <= listening, f"Pod {pod.namespace}/{pod.name} listens on {sorted(listening)}, group {group} " \
                                    f"needs {sorted(wanted)}"


def test_gateway_clients_differ_only_in_the_sidecar(clients: manifests.Bundle) -> None:
    """MTLS-01: both istio-ingress clients carry the gateway label; only the mesh one gets a sidecar."""
    pods = {p.name: p for p in _pods(clients) if p.namespace == "istio-ingress"}
    plain, mesh = pods["conformance-plaintext-client"], pods["conformance-mesh-client"]
    for pod in (plain, mesh):
        assert pod.labels.get("istio") == "ingressgateway", f"Pod {pod.name} lacks istio: ingressgateway"
        assert "app" not in pod.labels, f"Pod {pod.name} would become an endpoint of the gateway Service"
    assert plain.labels["sidecar.istio.io/inject"] == "false"
    assert mesh.labels["sidecar.istio.io/inject"] == "true"


def test_prometheus_clients_use_the_prometheus_service_account(clients: manifests.Bundle) -> None:
    """JWT-02/NET-03: scraping clients run as monitoring/prometheus, the principal the AuthorizationPolicy names;
    TEL-04's impostor carries Prometheus's labels under another identity, which the policy must refuse."""
    scrapers = {p.name: p for p in _pods(clients)
                if p.namespace == "monitoring" and p.labels.get("app.kubernetes.io/name") == "prometheus"}
    assert set(scrapers) == {"prometheus-mesh", "prometheus-plaintext", "prometheus-impostor"}
    accounts = {name: pod.spec.get("serviceAccountName") for name, pod in scrapers.items()}
    assert accounts == {"prometheus-mesh": "prometheus", "prometheus-plaintext": "prometheus",
                        "prometheus-impostor": "conformance-impostor"}


def test_redis_service_is_what_the_proxy_dials(clients: manifests.Bundle) -> None:
    """The stand-in Redis answers at REDIS_PROXY_UPSTREAM of the Deployment: redis-master.redis:6379."""
    deployment = yaml.safe_load((REPO / "base" / "deployment.yaml").read_text())
    proxy = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "redis-proxy")
    upstream = next(e["value"] for e in proxy["env"] if e["name"] == "REDIS_PROXY_UPSTREAM")
    host, port = upstream.rsplit(":", 1)
    name, namespace = host.split(".")[:2]
    service = clients.get("Service", name, namespace)
    assert service is not None, f"no Service {namespace}/{name} in fixtures/clients"
    assert int(port) in {p["port"] for p in service.spec["ports"]}


def test_client_images_are_filled_in(tmp_path: Path, clients: manifests.Bundle) -> None:
    """write_clients replaces every placeholder image with the given stand-in ref, and nothing else."""
    ref = "localhost/cortex-standin/client:0f3c9a1e"
    filled = manifests.load_overlay(overlay.write_clients(tmp_path, image=ref))
    assert {c.spec["image"] for p in _pods(filled) for c in manifests.pod_template_of(p).containers()} == {ref}
    before, after = _index(clients), _index(filled)
    changed = {(k, path) for k in before for path, _, _ in _diff(before[k], after[k])}
    assert all(path.endswith(".image") for _, path in changed), f"changed beyond images: {sorted(changed)}"


def test_placeholder_images_are_unresolvable_until_filled(clients: manifests.Bundle) -> None:
    """The committed fixtures carry only the placeholder, so an unfilled pod fails to pull instead of running."""
    images = {c.spec["image"] for p in _pods(clients) for c in manifests.pod_template_of(p).containers()}
    assert images == {f"{overlay.CLIENT_IMAGE_PLACEHOLDER}:placeholder"}


def test_kustomization_lists_every_file() -> None:
    """Every YAML file in fixtures/clients is listed, so none is silently left out."""
    listed = set(yaml.safe_load((overlay.CLIENTS / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in overlay.CLIENTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_conformance_overlay_is_valid_json_patch(written: overlay.ConformanceOverlay) -> None:
    """The JWKS patch in the written kustomization is a JSON patch naming the RequestAuthentication."""
    kustomization = yaml.safe_load((written.path / "kustomization.yaml").read_text())
    (patch,) = kustomization["patches"]
    assert patch["target"]["kind"] == "RequestAuthentication"
    assert [op["op"] for op in json.loads(patch["patch"])] == ["remove", "add"]
