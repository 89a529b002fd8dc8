"""kubectl against one cluster: one wrapper for every live-tier module.

Errors are one line naming the command; server-side waits (`kubectl wait`, `rollout status`) carry
their own deadline, and a failed wait leaves its evidence (events, pod status, logs) on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import progress
from conformance.errors import ConformanceError, WaitTimeout
from conformance.live.access import diagnose
from conformance.static.manifests import kubectl as pinned_kubectl
from conformance.wait import wait_until

# Pod states a pod does not leave by itself: waiting on it only hides the cause.
STUCK = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff",
         "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


class KubeError(ConformanceError):
    """kubectl failed; the message names the command and kubectl's last line."""


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@dataclass(frozen=True)
class Kube:
    """Which cluster: a kubeconfig file and context (None: the caller's defaults)."""

    kubeconfig: Path | None = None
    context: str | None = None
    binary: str = field(default_factory=pinned_kubectl)
    env: dict[str, str] | None = None

    def argv(self, *args: str) -> list[str]:
        argv = [self.binary]
        if self.kubeconfig:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            argv.append(f"--context={self.context}")
        return [*argv, *args]

    def helm_flags(self) -> list[str]:
        flags = [f"--kubeconfig={self.kubeconfig}"] if self.kubeconfig else []
        return flags + ([f"--kube-context={self.context}"] if self.context else [])

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **(self.env or {})}
        try:
            result = subprocess.run(self.argv(*args), input=input, capture_output=True, text=True, check=False,
                                    timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise KubeError(f"kubectl {' '.join(args[:4])} did not answer within {timeout:g}s") from None
        if check and result.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args[:4])} failed: {last_line(result.stderr or result.stdout)}")
        return result

    def json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, manifest: str, *, what: str = "manifests", manager: str = "cortex-conformance") -> None:
        """Server-side apply; each `manager` owns its own fields, so separate concerns never undo each other."""
        flags = ["--server-side", "--force-conflicts", f"--field-manager={manager}"]
        result = self.run("apply", *flags, "-f", "-", input=manifest, check=False, timeout=300)
        if result.returncode != 0:
            raise KubeError(f"applying {what} failed: {last_line(result.stderr)}")

    def wait(self, what: str, *args: str, timeout: float, evidence: Path | None = None,
             namespace: str | None = None) -> None:
        """`kubectl wait ...`, or a WaitTimeout that names `what` and saves the namespace's state."""
        with progress.noting(f"waiting for {what}"):
            result = self.run("wait", *args, f"--timeout={int(timeout)}s", check=False, timeout=timeout + 30)
        if result.returncode != 0:
            saved = self.save_evidence(namespace, evidence) if evidence and namespace else None
            hint = f"; events, pods and logs saved in {saved}" if saved else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}: "
                              f"{last_line(result.stderr or result.stdout)}{self._explain()}{hint}")

    def rollout(self, namespace: str, workload: str, *, timeout: float, evidence: Path | None = None) -> None:
        """`kubectl rollout status` (a watch on the API server) in 20 s slices, ending at once when a pod of
        the workload is stuck (CrashLoopBackOff, an image it cannot get) with that pod's reason and last log
        line; a timeout names the workload, the likely cause and where the evidence went."""
        deadline = time.monotonic() + timeout

        def rolled_out() -> bool:
            # A slice never reaches past the deadline: a 45 s bound waited 60 s in 20 s slices (measured).
            left = max(1, min(20, int(deadline - time.monotonic() + 0.999)))
            return self.run("rollout", "status", workload, "-n", namespace, f"--timeout={left}s", check=False,
                            timeout=60).returncode == 0

        try:
            with progress.noting(f"waiting for {workload} in {namespace} to roll out"):
                wait_until(f"{workload} in {namespace} to roll out", rolled_out, timeout=timeout, interval=0.5,
                           fail=lambda: self.stuck_pod(namespace, self.selector(namespace, workload),
                                                       self.current_revision(namespace, workload)))
        except WaitTimeout as exc:
            saved = self.save_evidence(namespace, evidence) if evidence else None
            hint = f"; events, pods and logs saved in {saved}" if saved else ""
            raise WaitTimeout(f"{exc}{'' if 'gave up' in str(exc) else self._explain()}{hint}") from None

    def selector(self, namespace: str, workload: str) -> str | None:
        """The label selector of a Deployment or DaemonSet, as ``k=v,...``; None while it does not exist."""
        result = self.run("get", "-n", namespace, workload, "-o", "jsonpath={.spec.selector.matchLabels}",
                          check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return ",".join(f"{k}={v}" for k, v in sorted(json.loads(result.stdout).items()))

    def current_revision(self, namespace: str, workload: str) -> str | None:
        """The pod-template-hash of a Deployment's newest ReplicaSet (None for other workloads)."""
        if not workload.startswith("deployment/"):
            return None
        selector = self.selector(namespace, workload)
        found = self.run("get", "replicasets", "-n", namespace, "-l", selector or "", "-o", "json", check=False)
        if not selector or found.returncode != 0:
            return None
        sets = json.loads(found.stdout).get("items", [])
        newest = max(sets, default=None, key=lambda rs: int((rs["metadata"].get("annotations") or {})
                                                              .get("deployment.kubernetes.io/revision", "0")))
        return (newest["metadata"].get("labels") or {}).get("pod-template-hash") if newest else None

    def stuck_pod(self, namespace: str, selector: str | None, revision: str | None = None) -> str | None:
        """The first selected pod (of `revision`, for a Deployment) in a state it will not leave by itself,
        as a one-line reason: a rollout that replaces a crashing pod is not stuck on the old one."""
        if selector is None:
            return None
        result = self.run("get", "pods", "-n", namespace, "-l", selector, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        for pod in json.loads(result.stdout).get("items", []):
            if revision and (pod["metadata"].get("labels") or {}).get("pod-template-hash") != revision:
                continue
            statuses = (pod.get("status", {}).get("initContainerStatuses", [])
                        + pod.get("status", {}).get("containerStatuses", []))
            for status in statuses:
                waiting = status.get("state", {}).get("waiting") or {}
                if waiting.get("reason") not in STUCK:
                    continue
                name = pod["metadata"]["name"]
                said = self.run("logs", name, "-n", namespace, "-c", status["name"], "--previous", "--tail=20",
                                check=False, timeout=30)
                logged = [line for line in said.stdout.splitlines() if line.strip()]
                detail = next((line for line in logged if "panic:" in line),
                              next((line for line in logged if line.lower().startswith(("error", "e1", "fatal"))),
                                   logged[-1] if logged else (waiting.get("message") or "").split("\n")[0]))
                return (f"pod {namespace}/{name} container {status['name']} is {waiting['reason']}"
                        + (f": {detail.strip()[:200]}" if detail else ""))
        return None

    def _explain(self) -> str:
        """What the cluster says is blocking, for a wait that timed out."""
        return diagnose.explain(self)

    def save_evidence(self, namespace: str, directory: Path) -> Path:
        """Events, pod status and container logs of a namespace, for a failed wait."""
        target = directory / "evidence" / namespace
        target.mkdir(parents=True, exist_ok=True)
        commands = {
            "events.txt": ("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"),
            "pods.txt": ("get", "pods", "-n", namespace, "-o", "wide"),
            "pods.yaml": ("get", "pods", "-n", namespace, "-o", "yaml"),
            "describe.txt": ("describe", "pods", "-n", namespace),
        }
        for name, args in commands.items():
            result = self.run(*args, check=False, timeout=60)
            (target / name).write_text(result.stdout + result.stderr)
        pods = self.run("get", "pods", "-n", namespace, "-o", "name", check=False).stdout.split()
        for pod in pods:
            result = self.run("logs", pod, "-n", namespace, "--all-containers", "--prefix", "--tail=300",
                              check=False, timeout=60)
            (target / f"logs-{pod.split('/')[-1]}.txt").write_text(result.stdout + result.stderr)
        return target

    @contextlib.contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[int]:
        """`kubectl port-forward` on a free loopback port, stopped on exit."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            local = probe.getsockname()[1]
        proc = subprocess.Popen(self.argv("port-forward", "-n", namespace, target, f"{local}:{port}",
                                          "--address=127.0.0.1"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(self.env or {})})

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
