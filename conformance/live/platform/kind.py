"""The kind cluster the suite creates, reuses and deletes, built on pytest-kind-ng's KindCluster.

KindCluster does the create (with our kind config), image loading and delete, with the pinned kind
and kubectl binaries. Around it this module adds what it lacks: reuse keyed on a fingerprint (a
hash of every pin, the kind config and the node image, so a changed pin means a new cluster, never
a stale one), a record of the clusters this suite created, one-line errors instead of
CalledProcessError tracebacks, and a server-side wait for the nodes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conformance import fixtures, paths
from conformance.errors import PreflightError
from conformance.live.access.kube import Kube, last_line
from conformance.wait import wait_until

NAME = "cortex-conformance"
CONFIGS = {3: paths.FIXTURES / "kind" / "cluster.yaml", 1: paths.FIXTURES / "kind" / "cluster-single.yaml"}
STATE_DIR = paths.cache_root() / "clusters"


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(stamp[:19] + "+00:00").timestamp()


def _started_within(stamps: list[str], window: float = 600) -> bool:
    """Whether a node started in the last `window` seconds: then the cluster was just restarted."""
    now = time.time()
    return any(now - _epoch(stamp) < window for stamp in stamps)


def fingerprint(nodes: int, node_image: str, node_image_id: str | None) -> str:
    """What the cluster is made of: the kind and Kubernetes pins, the kind config, the node image.

    Parsed values, not file bytes, so a comment or a pin of another component (Istio, Vault: the
    platform phase upgrades those in place) never throws a working cluster away.
    """
    pinned = fixtures.pins()
    made_of = {"kind": pinned["kind"], "kubernetes": pinned["kubernetes"],
               "config": fixtures.load_file(CONFIGS[nodes]), "node_image": node_image, "node_image_id": node_image_id}
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()


@dataclass
class Cluster:
    name: str
    nodes: int
    node_image: str
    fingerprint: str
    kind_binary: str
    env: dict[str, str]
    created: bool = False  # by this run

    @property
    def state_file(self) -> Path:
        return STATE_DIR / f"{self.name}.json"

    @property
    def kubeconfig(self) -> Path:
        return STATE_DIR / self.name / "kubeconfig"

    @property
    def kube(self) -> Kube:
        return Kube(kubeconfig=self.kubeconfig, context=f"kind-{self.name}", env=self.env)

    def _kind_cluster(self):
        # Imported here: the static tier's venv has no live-tier packages.
        from pytest_kind import KindCluster

        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        return KindCluster(self.name, kubeconfig=self.kubeconfig, image=self.node_image,
                           kind_path=Path(self.kind_binary), kubectl_path=Path(Kube().binary))

    def _kind(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([self.kind_binary, *args], capture_output=True, text=True, check=False,
                                  env=self.env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PreflightError(f"kind {' '.join(args[:2])} did not finish within {timeout:g}s") from None

    def _clusters(self) -> list[str]:
        result = self._kind("get", "clusters", timeout=60)
        if result.returncode != 0:
            raise PreflightError(f"kind get clusters failed: {last_line(result.stderr)}")
        return result.stdout.split()

    def exists(self) -> bool:
        return self.name in self._clusters()

    def others(self) -> list[str]:
        """Other kind clusters in the same Docker daemon."""
        return [name for name in self._clusters() if name != self.name]

    def recorded_fingerprint(self) -> str | None:
        if not self.state_file.exists():
            return None
        return json.loads(self.state_file.read_text()).get("fingerprint")

    def ensure(self, progress=print) -> None:
        """Reuse our cluster if its fingerprint matches, else (re)create it."""
        if self.exists():
            recorded = self.recorded_fingerprint()
            if recorded == self.fingerprint and self.kubeconfig.exists():
                progress(f"cluster: reusing kind cluster {self.name} (fingerprint {self.fingerprint[:12]})")
                self._wait_serving()
                return
            progress(f"cluster: {self.name} was built from other pins or config "
                     f"({(recorded or 'unknown')[:12]} != {self.fingerprint[:12]}); recreating it")
            self.delete()
        progress(f"cluster: creating kind cluster {self.name} with {self.nodes} node(s) from {self.node_image}")
        started = time.monotonic()
        try:
            self._kind_cluster().create(config_file=CONFIGS[self.nodes])
        except subprocess.CalledProcessError as exc:
            raise PreflightError(f"kind create cluster {self.name} failed (exit {exc.returncode}); "
                                 "kind's own output above says why") from None
        self.created = True
        self.kube.wait("every node of the new cluster to be Ready", "--for=condition=Ready", "nodes", "--all",
                       timeout=300)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({
            "name": self.name, "fingerprint": self.fingerprint, "nodes": self.nodes, "node_image": self.node_image,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "create_seconds": round(time.monotonic() - started, 1)}, indent=1))

    def _wait_serving(self) -> None:
        """A kept cluster may have just been restarted (a reboot, the Docker daemon started again): its nodes
        come back with the daemon, but the API server answers and the nodes turn Ready a minute later."""
        nodes = self._docker("ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={self.name}", "--format",
                             "{{.Names}}").split()
        states = [line.split() for line in self._docker(
            "inspect", "--format", "{{.Name}} {{.State.Status}} {{.State.StartedAt}}", *nodes).splitlines()
            if line.strip()] if nodes else []
        stopped = [name.lstrip("/") for name, status, _ in states if status == "exited"]
        if stopped:
            self._docker("start", *stopped)
        kube = self.kube
        wait_until(f"the API server of kind cluster {self.name} to answer /readyz",
                   lambda: kube.run("get", "--raw", "/readyz", check=False, timeout=20).returncode == 0,
                   timeout=180, interval=2)
        kube.wait(f"every node of kind cluster {self.name} to be Ready", "--for=condition=Ready", "nodes", "--all",
                  timeout=180)
        if stopped or _started_within([started for _, status, started in states if status == "running"]):
            self._settle(kube)

    def _settle(self, kube: Kube) -> None:
        """After a restart: the CNI's DaemonSets roll out, then pods that crashed while the Service network
        was down (metrics-server, istiod: measured, `dial tcp 10.96.0.1:443: connection refused`) are
        recreated now instead of after their back-off."""
        for daemonset in kube.run("get", "daemonsets", "-n", "kube-system", "-o", "name").stdout.split():
            kube.rollout("kube-system", daemonset, timeout=180)
        workload = fixtures.workload()
        # The workload's own pods are the checks' to judge, never ours to recycle.
        theirs = {workload.namespace, *workload.client_namespaces}
        pods = kube.json("get", "pods", "--all-namespaces").get("items") or []
        for pod in (p for p in pods if p["metadata"]["namespace"] not in theirs):
            waiting = [(s.get("state") or {}).get("waiting", {}).get("reason") for s in
                       (pod.get("status") or {}).get("containerStatuses") or []]
            if "CrashLoopBackOff" in waiting:
                meta = pod["metadata"]
                kube.run("delete", "pod", meta["name"], "-n", meta["namespace"], "--wait=false")

    def _docker(self, *args: str) -> str:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, env=self.env,
                                timeout=120)
        if result.returncode != 0:
            raise PreflightError(f"docker {' '.join(args[:2])} failed: {last_line(result.stderr)}")
        return result.stdout

    def load_images(self, refs: list[str], progress=print) -> None:
        """Move images into every node (`kind load docker-image`) unless the nodes hold them."""
        missing = [ref for ref in refs if not self._on_nodes(ref)]
        cluster = self._kind_cluster()
        for index, ref in enumerate(missing, 1):
            progress(f"cluster: loading {ref} into {self.name} ({index}/{len(missing)})")
            try:
                cluster.load_docker_image(ref)
            except subprocess.CalledProcessError as exc:
                raise PreflightError(f"kind load docker-image {ref} failed (exit {exc.returncode})") from None

    def _on_nodes(self, ref: str) -> bool:
        nodes = self._kind("get", "nodes", f"--name={self.name}", timeout=60).stdout.split()
        for node in nodes:
            result = subprocess.run(["docker", "exec", node, "crictl", "inspecti", ref], capture_output=True,
                                    text=True, check=False, env=self.env, timeout=60)
            if result.returncode != 0:
                return False
        return bool(nodes)

    def delete(self) -> None:
        try:
            self._kind_cluster().delete()
        except subprocess.CalledProcessError as exc:
            raise PreflightError(f"kind delete cluster {self.name} failed (exit {exc.returncode})") from None
        self.state_file.unlink(missing_ok=True)
