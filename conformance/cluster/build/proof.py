"""Proof of stage 1 on the built images: a kind cluster comes up, a pod runs, the NetworkPolicy
canary denies, and metrics-server serves pod metrics. Every phase is timed.

    python -m conformance.cluster.build.proof [--single] [--keep] [--name NAME]

It uses only what the build produced (the image set), the private dockerd and its own kubeconfig;
the cluster is deleted at the end, also on failure or Ctrl-C, unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from conformance.cluster import docker as dockerd
from conformance.cluster.build.__main__ import default_image_set
from conformance.errors import ConformanceError, PreflightError
from conformance.pins import FIXTURES
from conformance.wait import wait_until

NAMESPACE = "canary"
SERVER_PORT = 8080


class ProofFailed(ConformanceError):
    """A proof step did not hold."""


class Proof:
    def __init__(self, name: str, single: bool, image_set: Path):
        if not image_set.is_file():
            raise PreflightError(f"no image set at {image_set}: run python -m conformance.cluster.build first")
        self.set = json.loads(image_set.read_text())
        missing = [role for role in ("node", "client", "vault-agent", "vault-server", "vault-injector")
                   if role not in self.set["images"]]
        missing += [f for f in ("kind", "kubectl", "metrics-server-kustomize", "vault-injector-manifests")
                    if f not in self.set["files"]]
        if missing:
            raise PreflightError(
                f"image set {image_set} lacks {', '.join(missing)}: build the cluster and vault groups")
        self.name = name
        self.single = single
        self.env = dockerd.start().env()
        self.tmp = Path(tempfile.mkdtemp(prefix="cortex-proof-"))
        self.kubeconfig = self.tmp / "kubeconfig"
        self.times: dict[str, float] = {}

    def run(self, argv: list[str], *, input: str | None = None, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(argv, env=self.env, input=input, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
            raise ProofFailed(f"{' '.join(argv[:4])} failed (exit {result.returncode}): {last}")
        return result

    def kind(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run([self.set["files"]["kind"], *args], **kw)

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run([self.set["files"]["kubectl"], f"--kubeconfig={self.kubeconfig}", *args], **kw)

    def phase(self, name: str, action: Callable[[], object]) -> None:
        started = time.monotonic()
        print(f"{name} ...", file=sys.stderr, flush=True)
        action()
        self.times[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {self.times[name]} s", flush=True)

    # -- phases --------------------------------------------------------------------------------

    def create(self) -> None:
        config = FIXTURES / "build" / "kind-proof.yaml"
        if self.single:
            document = yaml.safe_load(config.read_text())
            document["nodes"] = [{"role": "control-plane"}]
            config = self.tmp / "kind-single.yaml"
            config.write_text(yaml.safe_dump(document))
        self.kind("create", "cluster", f"--name={self.name}", f"--image={self.set['images']['node']['ref']}",
                  f"--config={config}", f"--kubeconfig={self.kubeconfig}", "--wait=5m", timeout=900)

    def nodes_ready(self) -> None:
        self.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=300s", timeout=320)
        self.kubectl("-n", "kube-system", "rollout", "status", "daemonset/kube-router", "--timeout=300s", timeout=320)
        self.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=300s", timeout=320)

    def load(self) -> None:
        for role in ("client", "vault-agent"):
            self.kind("load", "docker-image", self.set["images"][role]["ref"], f"--name={self.name}", timeout=900)

    def pods(self) -> None:
        busybox = self.set["images"]["vault-agent"]["ref"]
        client = self.set["images"]["client"]["ref"]
        docs = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            _pod("server", busybox, ["/bin/sh", "-c",
                                     f"echo ok > /tmp/index.html && exec httpd -f -p {SERVER_PORT} -h /tmp"],
                 labels={"app": "server"}, port=SERVER_PORT),
            _pod("client", client, ["sleep", "infinity"], labels={"app": "client"}),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "server", "namespace": NAMESPACE},
             "spec": {"selector": {"app": "server"}, "ports": [{"port": SERVER_PORT, "targetPort": SERVER_PORT}]}},
        ]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        self.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=180s", timeout=200)

    def curl(self) -> subprocess.CompletedProcess:
        return self.kubectl("-n", NAMESPACE, "exec", "client", "--", "curl", "-sS", "-o", "/dev/null", "-w",
                            "%{http_code}", "--max-time", "3", f"http://server.{NAMESPACE}.svc:{SERVER_PORT}/",
                            check=False, timeout=30)

    def reachable(self) -> None:
        wait_until("client pod to reach server before any policy",
                   lambda: self.curl().stdout.strip() == "200", timeout=120, interval=2)

    def canary(self) -> None:
        deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny-ingress", "namespace": NAMESPACE},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(deny))
        result = wait_until("default-deny NetworkPolicy to block client -> server",
                            lambda: (r := self.curl()).returncode != 0 and r, timeout=90, interval=2)
        print(f"  canary: curl exit {result.returncode} ({result.stderr.strip()[:80]})", flush=True)
        self.kubectl("-n", NAMESPACE, "delete", "networkpolicy", "default-deny-ingress")
        wait_until("client -> server to work again after the policy is removed",
                   lambda: self.curl().stdout.strip() == "200", timeout=90, interval=2)

    def metrics(self) -> None:
        rendered = self.kubectl("kustomize", self.set["files"]["metrics-server-kustomize"]).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        for doc in docs:
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "metrics-server":
                container = doc["spec"]["template"]["spec"]["containers"][0]
                container["args"].append("--kubelet-insecure-tls")
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        self.kubectl("-n", "kube-system", "rollout", "status", "deployment/metrics-server", "--timeout=300s",
                     timeout=320)
        top = wait_until("kubectl top pods to report metrics for the canary namespace",
                         lambda: (r := self.kubectl("-n", NAMESPACE, "top", "pods", check=False)).returncode == 0 and r,
                         timeout=180, interval=5)
        print("  " + top.stdout.strip().replace("\n", "\n  "), flush=True)

    def vault(self) -> None:
        """Stage 2 in a cluster: dev server, injector and agent images, one injected secret rendered."""
        refs = {role: self.set["images"][role]["ref"] for role in ("vault-server", "vault-injector", "vault-agent")}
        for role in ("vault-server", "vault-injector"):
            self.kind("load", "docker-image", refs[role], f"--name={self.name}", timeout=900)
        root_token = secrets.token_hex(16)  # per run; lives only in the cluster it configures
        server = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vault"}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "vault", "namespace": "vault"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "vault-auth-delegator"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "system:auth-delegator"},
             "subjects": [{"kind": "ServiceAccount", "name": "vault", "namespace": "vault"}]},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vault", "namespace": "vault"},
             "spec": {"selector": {"matchLabels": {"app": "vault"}}, "template": {
                 "metadata": {"labels": {"app": "vault"}},
                 "spec": {"serviceAccountName": "vault", "containers": [{
                     "name": "vault", "image": refs["vault-server"], "imagePullPolicy": "Never",
                     "env": [{"name": "BAO_DEV_ROOT_TOKEN_ID", "value": root_token}],
                     "ports": [{"containerPort": 8200}],
                     "readinessProbe": {"httpGet": {"path": "/v1/sys/health", "port": 8200}, "periodSeconds": 2}}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "vault", "namespace": "vault"},
             "spec": {"selector": {"app": "vault"}, "ports": [{"port": 8200, "targetPort": 8200}]}},
        ]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(server))
        rendered = self.kubectl("kustomize", self.set["files"]["vault-injector-manifests"]).stdout
        injector = [d for d in yaml.safe_load_all(rendered) if d]
        for doc in injector:
            if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}:
                doc["metadata"]["namespace"] = "vault"
            if doc["kind"] == "Deployment":
                container = doc["spec"]["template"]["spec"]["containers"][0]
                container["image"] = refs["vault-injector"]
                container["imagePullPolicy"] = "Never"
                overrides = {"AGENT_INJECT_VAULT_ADDR": "http://vault.vault.svc:8200",
                             "AGENT_INJECT_VAULT_IMAGE": refs["vault-agent"]}
                for env in container["env"]:
                    env["value"] = overrides.get(env["name"], env.get("value"))
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(injector))
        for deployment in ("vault", "vault-injector"):
            self.kubectl("-n", "vault", "rollout", "status", f"deployment/{deployment}", "--timeout=180s", timeout=200)

        # `bao server -dev` leaves its root token in the server's ~/.vault-token, which these use.
        def bao(command: str, *args: str, stdin: str | None = None) -> None:
            self.kubectl("-n", "vault", "exec", "-i", "deploy/vault", "--", "bao", *command.split(),
                         "-address=http://127.0.0.1:8200", *args, input=stdin)

        bao("auth enable", "kubernetes")
        bao("write", "auth/kubernetes/config", "kubernetes_host=https://kubernetes.default.svc")
        bao("policy write", "smoke", "-", stdin='path "secret/data/smoke/*" { capabilities = ["read"] }\n')
        bao("write", "auth/kubernetes/role/smoke", "bound_service_account_names=smoke",
            f"bound_service_account_namespaces={NAMESPACE}", "policies=smoke", "ttl=10m")
        expected = {"user": secrets.token_hex(4), "password": secrets.token_hex(8)}
        bao("kv put", "secret/smoke/app", *(f"{k}={v}" for k, v in expected.items()))
        template = '{{- with secret "secret/data/smoke/app" -}}{{ .Data.data | toJSON }}{{- end -}}'
        pod = _pod("injected", self.set["images"]["client"]["ref"], ["sleep", "infinity"], labels={"app": "injected"})
        pod["metadata"]["annotations"] = {
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "smoke",
            "vault.hashicorp.com/agent-pre-populate-only": "true",
            "vault.hashicorp.com/agent-inject-secret-app.json": "secret/data/smoke/app",
            "vault.hashicorp.com/agent-inject-template-app.json": template,
        }
        pod["spec"]["serviceAccountName"] = "smoke"
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "smoke", "namespace": NAMESPACE}}
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([account, pod]))
        self.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/injected", "--timeout=180s", timeout=200)
        init = self.kubectl("-n", NAMESPACE, "get", "pod", "injected", "-o",
                            "jsonpath={.spec.initContainers[*].name} {.spec.initContainers[*].image}").stdout
        rendered = json.loads(self.kubectl("-n", NAMESPACE, "exec", "injected", "-c", "injected", "--",
                                           "cat", "/vault/secrets/app.json").stdout)
        if rendered != expected:
            raise ProofFailed("/vault/secrets/app.json in pod injected does not hold the kv values written")
        print(f"  injected init container: {init}; /vault/secrets/app.json matches the kv data", flush=True)

    def delete(self) -> None:
        self.kind("delete", "cluster", f"--name={self.name}", f"--kubeconfig={self.kubeconfig}", check=False)


def _pod(name: str, image: str, command: list[str], *, labels: dict, port: int | None = None) -> dict:
    container = {
        "name": name, "image": image, "imagePullPolicy": "Never", "command": command,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
    }
    if port:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": port}, "periodSeconds": 2}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.cluster.build.proof",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--single", action="store_true", help="one control-plane node instead of 1 + 2 workers")
    parser.add_argument("--keep", action="store_true", help="keep the cluster afterwards")
    parser.add_argument("--name", default="cortex-proof", help="kind cluster name (default cortex-proof)")
    parser.add_argument("--vault", action="store_true",
                        help="also run the stage-2 images: dev server, injector, one injected secret")
    parser.add_argument("--image-set", type=Path, default=default_image_set())
    args = parser.parse_args(argv)
    proof = None
    try:
        proof = Proof(args.name, args.single, args.image_set)
        started = time.monotonic()
        proof.phase("kind create cluster", proof.create)
        proof.phase("nodes, kube-router and CoreDNS ready", proof.nodes_ready)
        proof.phase("kind load (client, busybox)", proof.load)
        proof.phase("pods running", proof.pods)
        proof.phase("client reaches server", proof.reachable)
        proof.phase("NetworkPolicy canary denies", proof.canary)
        proof.phase("metrics-server serves kubectl top", proof.metrics)
        if args.vault:
            proof.phase("vault-k8s injects the bao agent, secret rendered", proof.vault)
        proof.times["total"] = round(time.monotonic() - started, 1)
        print(json.dumps({"nodes": 1 if args.single else 3, "seconds": proof.times}))
    except ConformanceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if proof is not None and not args.keep:
            proof.delete()
            # The kubeconfig holds the cluster's admin key: gone with the cluster.
            shutil.rmtree(proof.tmp, ignore_errors=True)
        elif proof is not None:
            print(f"kept cluster {args.name}; kubeconfig {proof.kubeconfig}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
