"""The workload phase: the suite's namespaces, Vault's secrets and role, the dev overlay with stand-in
images (the conformance overlay), the client pods; and their removal afterwards.

A rollout that does not become Ready does not end the run: it is recorded (`rollout_error`, with the
namespace's events, pods and logs saved), so that PROBE-01 fails with that evidence and every other
check still reports on what is there.
"""

from __future__ import annotations

import base64
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
from conformance.live.access.kube import Kube, KubeError
from conformance.live.evidence import observe
from conformance.live.options import Options
from conformance.live.phases.images import ImageSet
from conformance.live.platform import push
from conformance.live.workload import overlay as conformance_overlay
from conformance.live.workload.changes import digest, in_place_changes, object_digests
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
WARM_RECORD = "cortex-conformance-workload"
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
    platform_fingerprint: str = ""  # the platform phase's `installed`, "" when the cluster records none
    overlay: conformance_overlay.ConformanceOverlay | None = None
    signing_keys: Any = None
    _tokens: Any = field(default=None, repr=False)
    _minted: float = 0.0
    vault_result: Any = None
    rollout_error: str | None = None
    # (Kind namespace/name, reason) of each object of the last applied overlay the cluster refused (SCHEMA-03).
    refused: list[tuple[str, str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    rendered: str = field(default="", repr=False)  # what is applied now: the conformance overlay, rendered
    applied_keys: set[tuple[str, str, str]] = field(default_factory=set)  # its objects (kind.group, ns, name)
    warm: bool = False  # this run found the previous run's workload and reconciled it
    _digests: dict[str, str] = field(default_factory=dict)
    _objects: dict[str, str] = field(default_factory=dict)  # kind/namespace/name -> digest, of the overlay

    name = "workload"

    def up(self) -> None:
        from conformance.live.evidence import tokens

        spec = fixtures.workload()
        namespaces = (spec.namespace, *spec.client_namespaces, CANARY_NAMESPACE)
        clients = render(conformance_overlay.write_clients(self.work / "clients",
                                                           image=self.images.refs["conformance-client"]))
        canary = (paths.FIXTURES / "canary" / "pods.yaml").read_text().replace(
            CANARY_IMAGE, self.images.refs["conformance-client"])
        # Read once: whether the kept workload is whole and which namespaces to claim are both decided on it.
        states = {namespace: self._namespace(namespace) for namespace in namespaces}
        record = self._warm_record(states)
        # A kept workload keeps its signing keys: new ones would change every proxy's JWT filter, and Envoy
        # drains the old filter chains' connections only as they are next used, answering one request
        # each with the old keys. The gateway certificate is new every run (SDS; no listener changes).
        self.signing_keys = (tokens.SigningKeys.from_pem(record["signing_keys"]) if record is not None
                             else tokens.generate_keys())
        rendered = self.render_overlay(OVERLAYS / "dev")
        # A reinstalled platform (another Istio, new mesh defaults) needs new sidecars: start over too.
        self._objects = self._object_digests(rendered)
        self._digests = {"clients": digest(clients + canary), "overlay": digest(json.dumps(self._objects,
                                                                                             sort_keys=True)),
                         "platform": self.platform_fingerprint}
        changed = in_place_changes(record, self._digests, self._objects)
        self.warm = changed is not None
        if record is not None and not self.warm:
            self.progress("workload: the client pods, the platform or the overlay's namespaces or configuration "
                          "changed since the last run: starting over")
        if self.warm:
            self.progress("workload: reusing the previous run's workload, "
                          + (f"with the overlay's changes applied in place ({', '.join(sorted(changed))})"
                             if changed else "unchanged") + " (new certificate and scale)")
            self.applied, self.applied_keys = list(namespaces), {tuple(k) for k in record["keys"]}
            self._reset_scale(spec)
        else:
            self._claim_namespaces(states)
        if self.vault_token is not None:
            self.progress("workload: Vault bootstrap (kv, policy, Kubernetes auth role)")
            self.vault_result = self._bootstrap_vault()
        if not self.warm:
            self.progress("workload: client pods, the stand-in Redis and the NetworkPolicy canary")
            self.kube.apply(clients, what="the client pods")
            self.kube.apply(canary, what="the canary pods")
        self.progress("workload: the dev overlay with stand-in images (conformance overlay)")
        # A change to Istio config under running proxies is judged only once istiod has pushed it to them
        # and the connections opened before it have drained (push.DRAIN, settled before the checks).
        push.pushing(self, lambda: self.apply_overlay(rendered), "changed overlay's Istio config",
                     mesh=push.any_istio(changed or ()), said=lambda line: self.progress(f"workload: {line}"))
        self._wait_clients(spec)
        if self.warm:
            self._wait_new_credentials(spec)
        push.DRAIN.settle()

    # -- a warm workload: kept on a reused cluster between runs -----------------------------------------

    def _warm_record(self, states: dict[str, str]) -> dict[str, Any] | None:
        """The previous run's record, if it left its workload whole: every namespace ours and alive
        (`states`: namespace -> _namespace)."""
        found = self.kube.run("get", "secret", WARM_RECORD, "-n", "kube-system", "-o", "jsonpath={.data.record}",
                              check=False)
        if found.returncode != 0 or not found.stdout.strip():
            return None
        # A run that stops half-way must not leave a record the next one trusts.
        self.kube.run("delete", "secret", WARM_RECORD, "-n", "kube-system", "--ignore-not-found", check=False)
        if any(state != "ours" for state in states.values()):
            return None
        return json.loads(base64.b64decode(found.stdout))

    def _namespace(self, namespace: str) -> str:
        """absent, terminating, ours (labelled by this suite), or foreign."""
        found = self.kube.run("get", "namespace", namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return "absent"
        doc = json.loads(found.stdout)
        if (doc["metadata"].get("labels") or {}).get(OWNER_LABEL) != OWNER:
            return "foreign"
        return "terminating" if (doc.get("status") or {}).get("phase") == "Terminating" else "ours"

    def _object_digests(self, rendered: str) -> dict[str, str]:
        """object_digests of the rendered overlay, but this run's gateway certificate Secrets (new every run)."""
        return object_digests(rendered, skip={f"Secret/{ns}/{name}" for ns, name in self.overlay.tls_secrets})

    def _reset_scale(self, spec: fixtures.Workload) -> None:
        """The previous run's load test scaled the Deployment up: back to the HPA's minimum, with a new HPA
        (the overlay's apply recreates it without the old one's scale-down history)."""
        minimum = fixtures.expectations("live")["hpa"]["min_replicas"]
        current = self.kube.json("get", "deployment", spec.name, "-n", spec.namespace).get("spec", {}).get("replicas")
        if current is not None and current > minimum:
            self.kube.run("delete", "hpa", spec.name, "-n", spec.namespace, "--ignore-not-found")
            self.kube.run("scale", f"deployment/{spec.name}", "-n", spec.namespace, f"--replicas={minimum}")

    def _wait_new_credentials(self, spec: fixtures.Workload) -> None:
        """The run's new gateway certificate reaches the gateway through SDS, not at once: wait until the
        gateway serves it and accepts this run's valid token."""
        from conformance.live.evidence.traffic import Gateway

        gateway = Gateway(spec.gateway.host, spec.gateway.host_ports["http"], spec.gateway.host_ports["https"],
                          self.overlay.tls.ca_pem)
        path = fixtures.expectations("live")["gateway"]["models_path"]
        try:
            wait_until("the gateway to serve this run's certificate and accept this run's token",
                       lambda: gateway.request(path, headers=self.tokens.case("valid").headers,
                                               what="the valid token").status == 200, timeout=90, interval=1)
        except WaitTimeout as exc:
            # The checks report what does not work; the wait only gives the proxies their chance.
            self.progress(f"workload: {exc}")

    def keep(self) -> None:
        """Leave the workload for the next run on this (our own kind) cluster, with the record it reuses it
        from. A Secret, because it holds the JWT signing keys; never in the repo or the logs."""
        record = {"keys": sorted(self.applied_keys), **self._digests, "objects": self._objects,
                  "signing_keys": self.signing_keys.to_pem()}
        self.kube.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
            "name": WARM_RECORD, "namespace": "kube-system"}, "stringData": {"record": json.dumps(record)}}),
            what="the workload's record")

    @property
    def tokens(self):
        """The token cases, minted again when they are half-way to expiring (jwt.yaml's valid token lives
        ten minutes, and the fault catalogue runs the checks for half an hour)."""
        from conformance.live.evidence import tokens

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
        gone = self.applied_keys - _keys(rendered)
        for kind, namespace, name in sorted(gone):
            self.kube.run("delete", kind, name, *(["-n", namespace] if namespace else []), "--ignore-not-found",
                          "--wait=false", check=False)
        self.refused = []
        try:
            self.kube.apply(rendered, what="the conformance overlay")
        except KubeError:
            # An object the API server or a webhook refuses is a finding about the manifests (SCHEMA-03), not a
            # broken run: apply the rest and let every check judge what the cluster admitted.
            self.refused = self._refusals(rendered)
            if not self.refused:
                raise
            self.progress("workload: the cluster refused " + "; ".join(f"{ref}: {why}" for ref, why in self.refused))
            # What the cluster holds: a refused object keeps its previous version, or does not exist. The next
            # apply (a fault's undo) is compared with this, and must not wait for a push of what never changed.
            rendered = _admitted(rendered, self.rendered, {ref for ref, _ in self.refused})
        self.rendered, self.applied_keys = rendered, _keys(rendered)
        self.wait_rollout(timeout=wait)

    def _refusals(self, rendered: str) -> list[tuple[str, str]]:
        """Each object of `rendered` applied on its own: (Kind namespace/name, the cluster's reason) of those refused.

        A multi-object apply names only its last error; one object at a time names each and applies every one the
        cluster admits."""
        refused = []
        for doc in yaml.safe_load_all(rendered):
            if not doc or not doc.get("kind"):
                continue
            ref = _ref(doc)
            try:
                self.kube.apply(yaml.safe_dump(doc), what=ref)
            except KubeError as exc:
                reason = str(exc).split(" failed: ", 1)[-1]
                if not refusal(reason):
                    # An unreachable server or webhook, or a permission the suite lacks: nothing the manifests
                    # did, so the run cannot judge them (INCOMPLETE), as before.
                    raise
                refused.append((ref, reason))
        return refused

    def wait_rollout(self, timeout: float = WAIT) -> None:
        """Wait for the Deployment; a rollout that never becomes Ready is recorded, not raised."""
        spec = fixtures.workload()
        self.rollout_error = None
        minimum = fixtures.expectations("live")["hpa"]["min_replicas"]

        def ready() -> bool:
            status = self.kube.json("get", "deployment", spec.name, "-n", spec.namespace).get("status") or {}
            if status.get("readyReplicas", 0) < minimum or status.get("unavailableReplicas"):
                return False
            # The checks look into every pod, and a pod still starting has no containers to look into yet
            # (measured: VAULT-02 "container not found" on a warm run, while a pod the previous run's
            # experiments had caused was still starting).
            return observe.every_pod_ready(self.kube)

        try:
            self.kube.rollout(spec.namespace, f"deployment/{spec.name}", timeout=timeout,
                              evidence=self.options.report_dir)
            # The Deployment sets no replicas (the HPA owns the count), so it rolls out with one pod and
            # the HPA adds the rest at its next sync: the checks need the minimum it keeps.
            wait_until(f"{spec.ref('Deployment')} to have the HPA's {minimum} Ready pods and none starting", ready,
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

    def _claim_namespaces(self, states: dict[str, str]) -> None:
        """Our namespaces carry our label; a namespace someone else made is never taken over, and one of
        ours that is still there (a kept run's) is deleted first: this run starts as on a new cluster.
        `states`: namespace -> _namespace, in the order to claim them."""
        for namespace, state in states.items():
            if state == "foreign":
                raise PreflightError(f"namespace {namespace} exists and was not created by this suite "
                                     f"(no {OWNER_LABEL}={OWNER} label): refusing to take it over")
            if state == "ours":
                self.progress(f"workload: deleting the previous run's namespace {namespace}")
                self.kube.run("delete", "namespace", namespace, "--wait=false")
        for namespace in states:
            # Deletion gives up at once when the namespace says what blocks it (an APIService, a finalizer).
            self._wait_deleted(namespace)
            self.kube.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": namespace, "labels": {OWNER_LABEL: OWNER}}}), what=f"namespace {namespace}",
                manager="cortex-conformance-owner")
            self.applied.append(namespace)

    def _wait_deleted(self, namespace: str) -> None:
        from conformance.live.access import diagnose

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

        from conformance.live.platform import vault

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
        self.applied, self.rendered, self.applied_keys = [], "", set()
        if self.overlay is not None:
            for namespace, name in self.overlay.tls_secrets:
                with contextlib.suppress(KubeError):
                    self.kube.run("delete", "secret", name, "-n", namespace, "--ignore-not-found")
        with contextlib.suppress(KubeError):
            self.kube.run("delete", "pods", "-n", fixtures.workload().gateway.namespace, "-l",
                          "app.kubernetes.io/part-of=cortex-conformance", "--ignore-not-found")


def _ref(doc: dict[str, Any]) -> str:
    """`Kind namespace/name` of a manifest, as messages name it."""
    meta = doc.get("metadata") or {}
    return f"{doc['kind']} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name')}"


def _admitted(rendered: str, previous: str, refused: set[str]) -> str:
    """`rendered` with each refused object replaced by its version in `previous` (the cluster kept it), or left out."""
    kept = {_ref(doc): doc for doc in yaml.safe_load_all(previous or "") if doc and doc.get("kind")}
    docs = []
    for doc in yaml.safe_load_all(rendered):
        if not doc or not doc.get("kind"):
            continue
        ref = _ref(doc)
        if ref not in refused:
            docs.append(doc)
        elif ref in kept:
            docs.append(kept[ref])
    return yaml.safe_dump_all(docs, sort_keys=False)


def refusal(reason: str) -> bool:
    """Whether kubectl's error says the cluster judged the object and refused it (a validating webhook's or
    admission plugin's denial, a validation error, an unknown field), as opposed to not judging it at all: a
    webhook it could not call, a server that did not answer, a permission the suite lacks."""
    if "failed calling webhook" in reason or "cannot be handled" in reason or "unable to handle" in reason:
        return False
    return ("denied the request" in reason or "(Invalid)" in reason or " is invalid" in reason
            or "(BadRequest)" in reason or "strict decoding error" in reason)


def _keys(rendered: str) -> set[tuple[str, str, str]]:
    """(kind.group, namespace, name) of every object in a rendered multi-document YAML."""
    out = set()
    for doc in yaml.safe_load_all(rendered):
        if doc and doc.get("kind"):
            group = doc.get("apiVersion", "").rpartition("/")[0]
            meta = doc.get("metadata") or {}
            out.add((f"{doc['kind']}.{group}" if group else doc["kind"], meta.get("namespace", ""), meta["name"]))
    return out
