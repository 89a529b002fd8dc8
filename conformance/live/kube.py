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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import progress
from conformance.errors import ConformanceError, WaitTimeout
from conformance.static.manifests import kubectl as pinned_kubectl
from conformance.wait import wait_until


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
        with progress.noting(f"waiting for {workload} in {namespace} to roll out"):
            result = self.run("rollout", "status", workload, "-n", namespace, f"--timeout={int(timeout)}s",
                              check=False, timeout=timeout + 30)
        if result.returncode != 0:
            saved = self.save_evidence(namespace, evidence) if evidence else None
            hint = f"; events, pods and logs saved in {saved}" if saved else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {workload} in {namespace} to roll out: "
                              f"{last_line(result.stderr or result.stdout)}{self._explain()}{hint}")

    def _explain(self) -> str:
        """What the cluster says is blocking, for a wait that timed out (conformance.live.diagnose)."""
        from conformance.live import diagnose

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
