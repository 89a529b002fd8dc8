"""VAULT: no secret in any manifest; every secret arrives from Vault, for the bound account only.

Messages name the object and the field that holds a secret, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from conformance import fixtures
from conformance.static import mesh
from conformance.static.manifests import Bundle, PodTemplate
from conformance.static.rules import WORKLOADS, rule

ANNOTATION = "vault.hashicorp.com/"
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH)", re.IGNORECASE)
# Formats of the credentials this service holds, and of credentials in general.
SECRET_VALUES = {
    "a GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    "an OpenAI API key": re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{20,}"),
    "a Slack token": re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,})"),
    "a private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "an AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "a JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "a Vault token": re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}"),
}
# Every string of every object is searched: one pass for any format first, then the formats one by
# one only for the rare string that has one (seven passes per string cost seconds on a large bundle).
ANY_SECRET_VALUE = re.compile("|".join(f"(?:{p.pattern})" for p in SECRET_VALUES.values()))


def expectations() -> dict[str, Any]:
    return fixtures.expectations("vault")


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


@rule("VAULT-01")
def no_plaintext_secrets(bundle: Bundle) -> list[str]:
    gaps = []
    for secret in bundle.of_kind("Secret"):
        if secret.doc.get("data") or secret.doc.get("stringData"):
            gaps.append(f"{secret.ref}: a Secret with data is committed; secrets come from Vault")
    for obj in bundle.objects:
        for path, value in _strings(obj.doc, ""):
            if not ANY_SECRET_VALUE.search(value):
                continue
            for what, pattern in SECRET_VALUES.items():
                if pattern.search(value):
                    gaps.append(f"{obj.ref}: {path} holds what looks like {what}")
    for pod in bundle.pods:
        for c in pod.containers():
            for env in c.spec.get("env") or []:
                name = env.get("name", "")
                value = env.get("value")
                if value and SECRET_NAME.search(name) and not value.startswith("/"):
                    gaps.append(f"{c.ref}: env {name} has a literal value; secrets come from Vault as files")
                if (env.get("valueFrom") or {}).get("secretKeyRef"):
                    gaps.append(f"{c.ref}: env {name} comes from a Kubernetes Secret, readable by anyone who can "
                                "read the pod's environment; secrets come from Vault as files")
            for source in c.spec.get("envFrom") or []:
                if source.get("secretRef"):
                    gaps.append(f"{c.ref}: envFrom loads Secret {source['secretRef'].get('name')} into the environment")
        for volume in pod.spec.get("volumes") or []:
            if "secret" in volume:
                gaps.append(f"{pod.owner.ref}: volume {volume.get('name')} mounts Kubernetes Secret "
                            f"{volume['secret'].get('secretName')}; secrets come from Vault")
    return gaps


def bound_pods(bundle: Bundle) -> list[PodTemplate]:
    bound = {(a["namespace"], a["name"]) for a in expectations()["bound_service_accounts"]}
    return [p for p in bundle.pods if (p.namespace, p.spec.get("serviceAccountName", "default")) in bound]


@rule("VAULT-02")
def secrets_from_vault_agent(bundle: Bundle) -> list[str]:
    spec = expectations()
    mount = spec["kv_mount"]
    gaps = []
    pods = bound_pods(bundle)
    if not pods:
        accounts = ", ".join(f"{a['namespace']}/{a['name']}" for a in spec["bound_service_accounts"])
        gaps.append(f"no pod runs as the ServiceAccount Vault binds ({accounts}), so none receives the secrets")
    for pod in pods:
        notes = pod.annotations
        if notes.get(f"{ANNOTATION}agent-inject") != "true":
            gaps.append(f"{pod.owner.ref}: annotation {ANNOTATION}agent-inject is not \"true\", so no Vault agent "
                        "delivers its secrets")
            continue
        for secret in spec["secrets"]:
            file, path = secret["file"], f"{mount}/data/{secret['path']}"
            source = notes.get(f"{ANNOTATION}agent-inject-secret-{file}")
            if source != path:
                gaps.append(f"{pod.owner.ref}: annotation {ANNOTATION}agent-inject-secret-{file} is "
                            f"{source or 'missing'}, expected {path}")
                continue
            template = notes.get(f"{ANNOTATION}agent-inject-template-{file}", "")
            if f'secret "{path}"' not in template:
                gaps.append(f"{pod.owner.ref}: the template for {file} does not read {path}")
            elif "toJSON" not in template:
                missing = [k for k in secret["keys"] if f".Data.data.{k}" not in template]
                if missing:
                    gaps.append(f"{pod.owner.ref}: the template for {file} does not render key(s) {', '.join(missing)}")
        if notes.get(f"{ANNOTATION}tls-skip-verify", "false").lower() == "true":
            gaps.append(f"{pod.owner.ref}: {ANNOTATION}tls-skip-verify is true, so the agent trusts any Vault "
                        "impostor with the secrets' token")
        if notes.get(f"{ANNOTATION}service", "").startswith("http://"):
            gaps.append(f"{pod.owner.ref}: {ANNOTATION}service is plain http, so tokens and secrets cross the "
                        "network in clear")
        if notes.get(f"{ANNOTATION}agent-run-as-user") == "0":
            gaps.append(f"{pod.owner.ref}: {ANNOTATION}agent-run-as-user is 0, so the agent runs as root")
        if notes.get(f"{ANNOTATION}agent-set-security-context", "true").lower() == "false":
            gaps.append(f"{pod.owner.ref}: {ANNOTATION}agent-set-security-context is false, so the injected agent "
                        "runs without the restricted security context")
        prepopulate = notes.get(f"{ANNOTATION}agent-pre-populate", "true") != "false"
        excluded = {p.strip() for p in notes.get("traffic.sidecar.istio.io/excludeOutboundPorts", "").split(",")}
        if prepopulate and mesh.injection(bundle, pod) is None and str(spec["port"]) not in excluded:
            gaps.append(f"{pod.owner.ref}: the Vault init container runs before the Istio sidecar, but port "
                        f"{spec['port']} is not in traffic.sidecar.istio.io/excludeOutboundPorts, so it never "
                        "reaches Vault")
    return gaps


@rule("VAULT-03", WORKLOADS)
def role_bound_to_workload(bundle: Bundle) -> list[str]:
    spec = expectations()
    gaps = []
    for account in spec["bound_service_accounts"]:
        if "*" in account["name"] or "*" in account["namespace"]:
            gaps.append(f"fixtures/expectations/vault.yaml: role {spec['role']} is bound to {account['namespace']}/"
                        f"{account['name']}, a wildcard")
        elif bundle.get("ServiceAccount", account["name"], account["namespace"]) is None:
            gaps.append(f"ServiceAccount {account['namespace']}/{account['name']}: Vault binds role {spec['role']} "
                        "to it, but it is not in the manifests")
    bound = {p.owner.ref for p in bound_pods(bundle)}
    for pod in bundle.pods:
        role = pod.annotations.get(f"{ANNOTATION}role")
        if role is None:
            if pod.owner.ref in bound:
                gaps.append(f"{pod.owner.ref}: no {ANNOTATION}role annotation, so its agent cannot log in as "
                            f"{spec['role']}")
            continue
        if pod.owner.ref not in bound:
            gaps.append(f"{pod.owner.ref}: asks Vault for role {role} but runs as ServiceAccount "
                        f"{pod.spec.get('serviceAccountName', 'default')}, which the role does not bind")
        elif role != spec["role"]:
            gaps.append(f"{pod.owner.ref}: annotation {ANNOTATION}role is {role}, expected {spec['role']}")
        volume_name = pod.annotations.get(f"{ANNOTATION}agent-service-account-token-volume-name")
        if volume_name:
            volume = next((v for v in pod.spec.get("volumes") or [] if v.get("name") == volume_name), None)
            tokens = [s["serviceAccountToken"] for s in ((volume or {}).get("projected") or {}).get("sources") or []
                      if "serviceAccountToken" in s]
            if not tokens:
                gaps.append(f"{pod.owner.ref}: token volume {volume_name} is not a projected serviceAccountToken")
            elif tokens[0].get("audience") != spec["audience"]:
                gaps.append(f"{pod.owner.ref}: token volume {volume_name} has audience {tokens[0].get('audience')}, "
                            f"but the Vault role expects {spec['audience']}")
    return gaps
