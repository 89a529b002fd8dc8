"""The platform phase: what the overlay relies on cluster-wide. metrics-server, Istio (base, istiod,
CNI, ingress gateway) and a dev-mode Vault with its agent injector.

Manifests come from the upstream modules (metrics-server's kustomize overlay, vault-k8s's deploy/
directory) plus our own data in fixtures/vault/, assembled per run in a work directory with the
run's image references. Everything is applied server-side and is idempotent.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance import fixtures, paths
from conformance.errors import PreflightError
from conformance.live.access.kube import Kube
from conformance.live.options import Options
from conformance.live.phases.images import ImageSet
from conformance.static.manifests import render

VAULT_NAMESPACE = "vault"
VAULT_FIXTURES = paths.FIXTURES / "vault"
ROOT_TOKEN_SECRET = "vault-dev-root-token"  # noqa: S105 - the name of a Secret, not a token


def metrics_server(kube: Kube, manifests: str, *, image: str, timeout: float, evidence: Path) -> None:
    """metrics-server from its upstream kustomize overlay, told to trust kind's self-signed kubelets."""
    docs = list(yaml.safe_load_all(manifests))
    for doc in docs:
        if doc and doc.get("kind") == "Deployment" and doc["metadata"]["name"] == "metrics-server":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            container["image"] = image
            container["imagePullPolicy"] = "IfNotPresent"
            args = container.setdefault("args", [])
            if "--kubelet-insecure-tls" not in args:
                args.append("--kubelet-insecure-tls")
            # Scrape every 10 s (the least metrics-server allows) instead of 15 s: the HPA checks wait
            # for a scrape or two, and nothing here needs the lighter load.
            # (metrics-server refuses a resolution that is not above its kubelet request timeout, 10 s.)
            args[:] = [a for a in args if not a.startswith(("--metric-resolution", "--kubelet-request-timeout"))]
            args += ["--metric-resolution=10s", "--kubelet-request-timeout=5s"]
    kube.apply(yaml.safe_dump_all([d for d in docs if d]), what="metrics-server")
    kube.rollout("kube-system", "deployment/metrics-server", timeout=timeout, evidence=evidence)


def root_token(kube: Kube) -> str:
    """The dev server's root token: generated once per cluster, kept in a Secret, never printed."""
    existing = kube.run("get", "secret", ROOT_TOKEN_SECRET, "-n", VAULT_NAMESPACE, "-o",
                        "jsonpath={.data.token}", check=False)
    if existing.returncode == 0 and existing.stdout:
        import base64

        return base64.b64decode(existing.stdout).decode()
    token = secrets.token_urlsafe(24)
    kube.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": VAULT_NAMESPACE}}),
               what="namespace vault")
    kube.apply(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": ROOT_TOKEN_SECRET, "namespace": VAULT_NAMESPACE},
        "stringData": {"token": token}}), what="the Vault root token Secret")
    return token


def write_vault_kustomization(work: Path, *, server_image: str, agent_image: str, injector_image: str,
                              injector_manifests: Path) -> Path:
    """A kustomization: our dev server plus vault-k8s's own deploy/ directory, pointed at it."""
    root = work / "vault"
    root.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": VAULT_NAMESPACE,
        "resources": [os.path.relpath(VAULT_FIXTURES, root), os.path.relpath(injector_manifests, root)],
        "images": [
            {"name": "cortex-conformance/vault-server", "newName": server_image.rsplit(":", 1)[0],
             "newTag": server_image.rsplit(":", 1)[1]},
            {"name": "hashicorp/vault-k8s", "newName": injector_image.rsplit(":", 1)[0],
             "newTag": injector_image.rsplit(":", 1)[1]},
        ],
        "patches": [{
            "target": {"kind": "Deployment", "name": "vault-injector"},
            # A strategic merge keyed on env names: our agent image and the dev server's address.
            "patch": yaml.safe_dump({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vault-injector"},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [{
                    "name": "sidecar-injector",
                    "env": [{"name": "AGENT_INJECT_VAULT_IMAGE", "value": agent_image},
                            {"name": "AGENT_INJECT_VAULT_ADDR",
                             "value": f"http://vault.{VAULT_NAMESPACE}.svc:8200"}]}]}}}}),
        }],
    }
    (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return root


def vault(kube: Kube, work: Path, *, server_image: str, agent_image: str, injector_image: str,
          injector_manifests: Path, timeout: float, evidence: Path) -> str:
    """Install the dev server and the injector; returns the root token (for the bootstrap only)."""
    token = root_token(kube)
    root = write_vault_kustomization(work, server_image=server_image, agent_image=agent_image,
                                     injector_image=injector_image, injector_manifests=injector_manifests)
    rendered = render(root)
    kube.apply(rendered, what="Vault dev server and agent injector")
    kube.rollout(VAULT_NAMESPACE, "deployment/vault", timeout=timeout, evidence=evidence)
    kube.rollout(VAULT_NAMESPACE, "deployment/vault-injector", timeout=timeout, evidence=evidence)
    return token


WAIT = 600.0
FINGERPRINT_CONFIGMAP = "cortex-conformance-platform"
# The fixtures the platform is installed from, and the Deployments that must be available to reuse it.
PLATFORM_DATA = ("istio", "vault", "telemetry")
PLATFORM_DEPLOYMENTS = (("kube-system", "metrics-server"), ("istio-system", "istiod"),
                        ("istio-ingress", "istio-ingressgateway"), ("vault", "vault"), ("vault", "vault-injector"),
                        ("observability", "opentelemetry-collector"))


@dataclass
class Platform:
    """Phase 3: metrics-server, Istio and Vault on our cluster; on an existing one, only checked for."""

    options: Options
    images: ImageSet
    kube: Kube
    work: Path
    progress: Callable[[str], None]
    vault_token: str | None = field(default=None, repr=False)
    # The fingerprint of the platform on the cluster once `up` has run (None: the cluster records none).
    # The workload phase asks for it: a reinstalled platform (another Istio, new mesh defaults) needs new
    # sidecars, so a kept workload starts over.
    installed: str | None = None

    name = "platform"

    def up(self, creates_cluster: bool) -> None:
        if not creates_cluster:
            self._require()
            self.installed = self._installed()
            return
        fingerprint = self.fingerprint()
        if self._installed() == fingerprint and self._healthy():
            # Reused cluster, same pins and values: nothing to install, only the root token to read.
            self.progress(f"platform: reusing what is installed (fingerprint {fingerprint[:12]})")
            self.vault_token = root_token(self.kube)
        else:
            self._install()
            self.kube.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": FINGERPRINT_CONFIGMAP, "namespace": "kube-system"}, "data": {"fingerprint": fingerprint}}),
                what="the platform's fingerprint")
        self.installed = fingerprint

    def fingerprint(self) -> str:
        """What the platform is made of: its pins, image refs and the data files it is installed from."""
        pinned = fixtures.pins()
        roles = sorted(r for r in self.images.refs if r not in fixtures.workload().containers
                       and r not in ("node", "conformance-client"))
        files = sorted(p for d in PLATFORM_DATA for p in (paths.FIXTURES / d).rglob("*") if p.is_file())
        # The code that installs it too: a changed flag or step reinstalls.
        room = Path(__file__).parents[1] / "platform"
        files += [Path(__file__), room / "istio.py", room / "collector.py"]
        made_of = {"source": self.images.source, "refs": {r: self.images.refs[r] for r in roles},
                   "ids": {r: self.images.ids.get(r) for r in roles},
                   "pins": {k: pinned.get(k) for k in ("istio", "vault", "metrics_server", "telemetry")},
                   "files": {str(p.relative_to(paths.REPO)): hashlib.sha256(p.read_bytes()).hexdigest()
                             for p in files}}
        return hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode()).hexdigest()

    def _installed(self) -> str | None:
        """The fingerprint the cluster records for its platform (written by the install), or None."""
        found = self.kube.run("get", "configmap", FINGERPRINT_CONFIGMAP, "-n", "kube-system", "-o",
                              "jsonpath={.data.fingerprint}", check=False)
        return found.stdout.strip() or None if found.returncode == 0 else None

    def _healthy(self) -> bool:
        """Every platform Deployment exists and has all its replicas available (one API call)."""
        deployments = self.kube.json("get", "deployments", "-A")["items"]
        available = {(d["metadata"]["namespace"], d["metadata"]["name"]): (d.get("status") or {})
                     .get("availableReplicas", 0) >= (d["spec"].get("replicas") or 1) for d in deployments}
        return all(available.get(key) for key in PLATFORM_DEPLOYMENTS)

    def _install(self) -> None:
        from conformance.live.platform import istio

        files = self.images.files
        self.progress("platform: metrics-server")
        metrics_server(self.kube, render(Path(files["metrics-server-kustomize"])),
                       image=self.images.refs["metrics-server"], timeout=WAIT, evidence=self.options.report_dir)
        self.progress("platform: Istio (base, istiod, CNI, ingress gateway)")
        istio.install(self.kube, self.images.source, timeout=WAIT, progress=self.progress,
                      evidence=self.options.report_dir)
        from conformance.live.platform import collector

        self.progress("platform: the trace collector (Jaeger v2, fixtures/telemetry)")
        collector.install(self.kube, self.work, image=self.images.refs["collector"], timeout=WAIT,
                          evidence=self.options.report_dir)
        self.progress("platform: Vault dev server and agent injector")
        self.vault_token = vault(
            self.kube, self.work, server_image=self.images.refs["vault-server"],
            agent_image=self.images.refs["vault-agent"], injector_image=self.images.refs["vault-injector"],
            injector_manifests=Path(files["vault-injector-manifests"]), timeout=WAIT,
            evidence=self.options.report_dir)

    def _require(self) -> None:
        from conformance.live.platform import collector, istio

        missing = istio.missing(self.kube) + collector.missing(self.kube)
        vault_injector = self.kube.run("get", "deployment", "-A", "-l", "app.kubernetes.io/name=vault-injector",
                                       "-o", "name", check=False)
        if not vault_injector.stdout.strip():
            missing.append("the Vault agent injector (a Deployment labelled app.kubernetes.io/name=vault-injector)")
        if missing:
            raise PreflightError(f"context {self.kube.context} lacks {', '.join(missing)}; --target existing "
                                 "installs nothing cluster-wide")

    def down(self) -> None:
        """Nothing: the platform lives as long as the cluster it was installed on."""
