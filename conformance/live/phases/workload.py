"""The workload phase: the suite's namespaces, Vault's secrets and role, the dev overlay with stand-in
images (the conformance overlay), the client pods; and their removal afterwards.

A rollout that does not become Ready does not end the run: it is recorded (`rollout_error`, with the
namespace's events, pods and logs saved), so that PROBE-01 fails with that evidence and every other
check still reports on what is there.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance import fixtures, paths
from conformance.errors import PreflightError, WaitTimeout
from conformance.live import overlay as conformance_overlay
from conformance.live.kube import Kube, KubeError
from conformance.live.options import Options
from conformance.live.phases.images import ImageSet
from conformance.paths import OVERLAYS
from conformance.static.manifests import render
from conformance.wait import wait_until

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER = "cortex-conformance"
VAULT_NAMESPACE = "vault"
CANARY_NAMESPACE = "conformance-canary"  # fixtures/canary: two pods whose connection a deny must break (NET-01)
CANARY_IMAGE = "cortex-conformance/client:placeholder"
WAIT = 600.0
BLOCKED_GRACE = 20.0
TOKEN_REFRESH_SECONDS = 240.0


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
    _tokens: Any = field(default=None, repr=False)
    _minted: float = 0.0
    vault_result: Any = None
    rollout_error: str | None = None
    applied: list[str] = field(default_factory=list)
    rendered: str = field(default="", repr=False)  # what is applied now: the conformance overlay, rendered

    name = "workload"

    def up(self) -> None:
        from conformance.live import tokens

        spec = fixtures.workload()
        self._claim_namespaces((spec.namespace, *spec.client_namespaces, CANARY_NAMESPACE))
        if self.vault_token is not None:
            self.progress("workload: Vault bootstrap (kv, policy, Kubernetes auth role)")
            self.vault_result = self._bootstrap_vault()
        self.signing_keys = tokens.generate_keys()
        clients = conformance_overlay.write_clients(self.work / "clients",
                                                    image=self.images.refs["conformance-client"])
        self.progress("workload: client pods, the stand-in Redis and the NetworkPolicy canary")
        self.kube.apply(render(clients), what="the client pods")
        canary = (paths.FIXTURES / "canary" / "pods.yaml").read_text()
        self.kube.apply(canary.replace(CANARY_IMAGE, self.images.refs["conformance-client"]), what="the canary pods")
        self.progress("workload: the dev overlay with stand-in images (conformance overlay)")
        self.apply_overlay(self.render_overlay(OVERLAYS / "dev"))
        self._wait_clients(spec)

    @property
    def tokens(self):
        """The token cases, minted again when they are half-way to expiring (jwt.yaml's valid token lives
        ten minutes, and the fault catalogue runs the checks for half an hour)."""
        from conformance.live import tokens

        if self._tokens is None or time.monotonic() - self._minted > TOKEN_REFRESH_SECONDS:
            self._tokens, self._minted = tokens.mint(self.signing_keys), time.monotonic()
        return self._tokens

    def render_overlay(self, dev_overlay: Path, name: str = "overlay") -> str:
        """The conformance overlay on top of `dev_overlay` (overlays/dev, or a copy a fault changed), rendered
        with this run's images, JWKS and gateway certificate."""
        written = conformance_overlay.write_overlay(
            self.work / name, images={c: self.images.refs[c] for c in fixtures.workload().containers},
            jwks=self.signing_keys.jwks_json(), dev_overlay=dev_overlay,
            tls=self.overlay.tls if self.overlay is not None else None)
        if self.overlay is None:
            self.overlay = written
        return render(written.path)

    def apply_overlay(self, rendered: str, *, wait: float = WAIT) -> None:
        """Make the cluster hold exactly `rendered`: server-side apply it, delete what it no longer has.

        The same field manager applies every version, so a field one version drops is removed from the
        cluster too; objects are deleted by kind, namespace and name.
        """
        gone = _keys(self.rendered) - _keys(rendered)
        for kind, namespace, name in sorted(gone):
            self.kube.run("delete", kind, name, *(["-n", namespace] if namespace else []), "--ignore-not-found",
                          "--wait=false", check=False)
        self.kube.apply(rendered, what="the conformance overlay")
        self.rendered = rendered
        self.wait_rollout(timeout=wait)

    def wait_rollout(self, timeout: float = WAIT) -> None:
        """Wait for the Deployment; a rollout that never becomes Ready is recorded, not raised."""
        spec = fixtures.workload()
        self.rollout_error = None
        minimum = fixtures.expectations("live")["hpa"]["min_replicas"]

        def ready() -> bool:
            status = self.kube.json("get", "deployment", spec.name, "-n", spec.namespace).get("status") or {}
            return status.get("readyReplicas", 0) >= minimum and not status.get("unavailableReplicas")

        try:
            self.kube.rollout(spec.namespace, f"deployment/{spec.name}", timeout=timeout,
                              evidence=self.options.report_dir)
            # The Deployment sets no replicas (the HPA owns the count), so it rolls out with one pod and
            # the HPA adds the rest at its next sync: the checks need the minimum it keeps.
            wait_until(f"{spec.ref('Deployment')} to have the HPA's {minimum} Ready pods", ready,
                       timeout=min(timeout, 180), interval=2)
        except WaitTimeout as exc:
            # PROBE-01 reports this with its evidence; the other checks still look at what is there.
            self.rollout_error = str(exc)
            self.progress(f"workload: {exc}")

    def restart(self, timeout: float = WAIT) -> None:
        """New pods for the Deployment (admission runs again: injectors, Pod Security)."""
        spec = fixtures.workload()
        self.kube.run("rollout", "restart", f"deployment/{spec.name}", "-n", spec.namespace)
        self.wait_rollout(timeout)

    def _wait_clients(self, spec: fixtures.Workload) -> None:
        for namespace in (*spec.client_namespaces, spec.gateway.namespace, CANARY_NAMESPACE):
            self.kube.wait(f"the pods in {namespace} to be Ready", "--for=condition=Ready", "pods", "--all",
                           "-n", namespace, timeout=WAIT, evidence=self.options.report_dir, namespace=namespace)

    def _claim_namespaces(self, namespaces: tuple[str, ...]) -> None:
        """Our namespaces carry our label; a namespace someone else made is never taken over."""
        for namespace in namespaces:
            found = self.kube.run("get", "namespace", namespace, "-o", "json", check=False)
            if found.returncode == 0 and json.loads(found.stdout).get("status", {}).get("phase") == "Terminating":
                # The previous run's clean-up does not wait for deletion; this run does, once, and gives up
                # at once when the namespace says what blocks it (an unavailable APIService, a finalizer).
                self._wait_deleted(namespace)
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

    def _wait_deleted(self, namespace: str) -> None:
        from conformance.live import diagnose

        def gone() -> bool:
            return self.kube.run("get", "namespace", namespace, "-o", "name", check=False).returncode != 0

        def blocked() -> str:
            # Deletion reports a discovery failure for a few seconds while it starts; only a cause that
            # persists past a grace period ends the wait.
            if time.monotonic() - started < BLOCKED_GRACE:
                return ""
            causes = diagnose.blockers(self.kube)
            mine = [c for c in causes if c.startswith(f"namespace {namespace} ") or c.startswith("APIService")]
            return "; ".join(mine)

        started = time.monotonic()
        wait_until(f"namespace {namespace} to finish terminating", gone, timeout=WAIT, interval=2, fail=blocked)

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
        self.applied, self.rendered = [], ""
        if self.overlay is not None:
            for namespace, name in self.overlay.tls_secrets:
                with contextlib.suppress(KubeError):
                    self.kube.run("delete", "secret", name, "-n", namespace, "--ignore-not-found")
        with contextlib.suppress(KubeError):
            self.kube.run("delete", "pods", "-n", fixtures.workload().gateway.namespace, "-l",
                          "app.kubernetes.io/part-of=cortex-conformance", "--ignore-not-found")


def _keys(rendered: str) -> set[tuple[str, str, str]]:
    """(kind.group, namespace, name) of every object in a rendered multi-document YAML."""
    out = set()
    for doc in yaml.safe_load_all(rendered):
        if doc and doc.get("kind"):
            group = doc.get("apiVersion", "").rpartition("/")[0]
            meta = doc.get("metadata") or {}
            out.add((f"{doc['kind']}.{group}" if group else doc["kind"], meta.get("namespace", ""), meta["name"]))
    return out
