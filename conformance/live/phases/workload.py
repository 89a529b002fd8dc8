"""The workload phase: the suite's namespaces, Vault's secrets and role, the dev overlay with stand-in
images (the conformance overlay), the client pods; and their removal afterwards.

A rollout that does not become Ready does not end the run: it is recorded (`rollout_error`, with the
namespace's events, pods and logs saved), so that PROBE-01 fails with that evidence and every other
check still reports on what is there.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance import fixtures
from conformance.errors import PreflightError, WaitTimeout
from conformance.live import overlay as conformance_overlay
from conformance.live.kube import Kube, KubeError
from conformance.live.options import Options
from conformance.live.phases.images import ImageSet
from conformance.paths import OVERLAYS
from conformance.static.manifests import load_overlay, render
from conformance.wait import wait_until

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER = "cortex-conformance"
VAULT_NAMESPACE = "vault"
WAIT = 600.0


@dataclass
class Workload:
    """Phase 4: what the checks look at. Everything it creates it removes again (unless --keep)."""

    options: Options
    images: ImageSet
    kube: Kube
    work: Path
    progress: Callable[[str], None]
    vault_token: str | None = field(default=None, repr=False)
    overlay: conformance_overlay.ConformanceOverlay | None = None
    signing_keys: Any = None
    tokens: Any = None
    vault_result: Any = None
    rollout_error: str | None = None
    applied: list[str] = field(default_factory=list)

    name = "workload"

    def up(self) -> None:
        from conformance.live import tokens

        spec = fixtures.workload()
        self._claim_namespaces((spec.namespace, *spec.client_namespaces))
        if self.vault_token is not None:
            self.progress("workload: Vault bootstrap (kv, policy, Kubernetes auth role)")
            self.vault_result = self._bootstrap_vault()
        dev = load_overlay(OVERLAYS / "dev")
        self.signing_keys = tokens.generate_keys()
        self.tokens = tokens.mint_for_overlay(dev, self.signing_keys)
        self.overlay = conformance_overlay.write_overlay(
            self.work / "overlay", images={c: self.images.refs[c] for c in spec.containers},
            jwks=self.signing_keys.jwks_json())
        clients = conformance_overlay.write_clients(self.work / "clients",
                                                    image=self.images.refs["conformance-client"])
        self.progress("workload: client pods and the stand-in Redis")
        self.kube.apply(render(clients), what="the client pods")
        self.progress("workload: the dev overlay with stand-in images (conformance overlay)")
        self.kube.apply(render(self.overlay.path), what="the conformance overlay")
        self._wait_ready(spec)

    def _wait_ready(self, spec: fixtures.Workload) -> None:
        try:
            self.kube.rollout(spec.namespace, f"deployment/{spec.name}", timeout=WAIT,
                              evidence=self.options.report_dir)
        except WaitTimeout as exc:
            # PROBE-01 reports this with its evidence; the other checks still look at what is there.
            self.rollout_error = str(exc)
            self.progress(f"workload: {exc}")
        for namespace in (*spec.client_namespaces, spec.gateway.namespace):
            self.kube.wait(f"the pods in {namespace} to be Ready", "--for=condition=Ready", "pods", "--all",
                           "-n", namespace, timeout=WAIT, evidence=self.options.report_dir, namespace=namespace)

    def _claim_namespaces(self, namespaces: tuple[str, ...]) -> None:
        """Our namespaces carry our label; a namespace someone else made is never taken over."""
        for namespace in namespaces:
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

    def _bootstrap_vault(self):
        import hvac

        from conformance.live import vault

        with self.kube.port_forward(VAULT_NAMESPACE, "service/vault", 8200) as port:
            client = hvac.Client(url=f"http://127.0.0.1:{port}", token=self.vault_token)
            wait_until("Vault to answer as initialised and unsealed", lambda: client.sys.is_initialized(),
                       timeout=60, interval=1)
            return vault.bootstrap(client, vault.KubernetesAuth(host="https://kubernetes.default.svc"))

    def down(self) -> None:
        """Delete the namespaces this run claimed, the gateway's TLS secrets and our gateway-side pods."""
        for namespace in self.applied:
            self.progress(f"down: deleting namespace {namespace}")
            with contextlib.suppress(KubeError):
                self.kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
        if self.overlay is not None:
            for namespace, name in self.overlay.tls_secrets:
                with contextlib.suppress(KubeError):
                    self.kube.run("delete", "secret", name, "-n", namespace, "--ignore-not-found")
        with contextlib.suppress(KubeError):
            self.kube.run("delete", "pods", "-n", fixtures.workload().gateway.namespace, "-l",
                          "app.kubernetes.io/part-of=cortex-conformance", "--ignore-not-found")
