"""Bootstrap a (dev-mode) Vault for cortex-api from fixtures/expectations/vault.yaml, with hvac.

One contract drives both tiers: the kv-v2 mount, the role, the policy, the audience, the bound
ServiceAccounts and the secrets with their paths and keys. The bootstrap

- makes sure the kv-v2 mount exists and writes a dummy value, generated per run, for every key
  of every secret (existing complete values are kept unless ``rotate``: pods already running on
  a reused cluster hold files rendered from them);
- computes the sha256 of each file as the contract says it must read (one key: its value; several
  keys: Go's compact JSON of exactly those keys), from the values it wrote and never from the
  overlay's templates, so the live check holds the templates to the contract, compares digests with
  the pod's files, and no value is ever printed;
- enables and configures Kubernetes auth with the cluster's host, CA and reviewer JWT;
- writes a policy that can read exactly this service's secret paths, nothing else;
- writes a role bound to exactly the listed ServiceAccounts and namespaces, with the audience.

Every step is idempotent: running it twice leaves Vault as running it once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import yaml

from conformance.errors import ConformanceError, InputError
from conformance.paths import EXPECTATIONS

CONTRACT = EXPECTATIONS / "vault.yaml"
AGENT_SECRETS_DIR = "/vault/secrets"
AUTH_MOUNT = "kubernetes"
# Tokens from the role live as long as a conformance run needs, and no longer.
ROLE_TOKEN_TTL = "1h"  # noqa: S105 (a duration)


@dataclass(frozen=True)
class SecretSpec:
    file: str
    path: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Contract:
    kv_mount: str
    role: str
    policy: str
    audience: str
    bound_service_accounts: tuple[tuple[str, str], ...]  # (namespace, name)
    secrets: tuple[SecretSpec, ...]

    def data_path(self, secret: SecretSpec) -> str:
        """The kv-v2 API path a policy and a template name: <mount>/data/<path>."""
        return f"{self.kv_mount}/data/{secret.path}"


@dataclass(frozen=True)
class KubernetesAuth:
    """How Vault reaches the cluster's TokenReview API; the live tier passes the kind cluster's."""

    host: str
    ca_cert: str | None = None
    reviewer_jwt: str | None = field(default=None, repr=False)
    issuer: str | None = None


@dataclass(frozen=True)
class BootstrapResult:
    """What the live VAULT check needs: where each file lands and its expected digest. No values."""

    role: str
    policy: str
    digests: dict[str, str]  # file name -> sha256 of the content the contract gives it
    written: tuple[str, ...]  # kv paths whose values this run wrote (empty when all were kept)
    # sha256 -> what content with that digest is ("key api_key of cortex-api/dev/openai", ...): every key's
    # value and every file's content, so a wrong file can be named without reading it.
    known: dict[str, str] = field(default_factory=dict)

    def file_path(self, file: str) -> str:
        return f"{AGENT_SECRETS_DIR}/{file}"


def load_contract(path: Path = CONTRACT) -> Contract:
    try:
        data = yaml.safe_load(path.read_text())
        return Contract(
            kv_mount=data["kv_mount"], role=data["role"], policy=data["policy"], audience=data["audience"],
            bound_service_accounts=tuple((sa["namespace"], sa["name"]) for sa in data["bound_service_accounts"]),
            secrets=tuple(SecretSpec(s["file"], s["path"], tuple(s["keys"])) for s in data["secrets"]),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a Vault contract ({type(exc).__name__}: {exc})") from None


# --- what the agent writes ----------------------------------------------------------------------


def _go_json(value: Any) -> str:
    """Go's json.Marshal as consul-template's toJSON uses it: sorted keys, compact, HTML-safe."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


# --- the pieces Vault is given -------------------------------------------------------------------


def policy_text(contract: Contract) -> str:
    """Read on exactly the service's kv-v2 data paths: no wildcard, no list, no metadata, no write."""
    lines = [f"# {contract.policy}: written by the conformance bootstrap; read-only, this service's paths only."]
    for secret in contract.secrets:
        lines += [f'path "{contract.data_path(secret)}" {{', '  capabilities = ["read"]', "}"]
    return "\n".join(lines) + "\n"


def role_bindings(contract: Contract) -> tuple[list[str], list[str]]:
    """Names and namespaces for the role, refusing a list that one Vault role cannot bind exactly.

    Vault binds every listed name in every listed namespace, so ns-a/x plus ns-b/y would also
    admit ns-a/y and ns-b/x; such a contract needs one role per ServiceAccount instead.
    """
    names = sorted({name for _, name in contract.bound_service_accounts})
    namespaces = sorted({ns for ns, _ in contract.bound_service_accounts})
    if {(ns, n) for ns in namespaces for n in names} != set(contract.bound_service_accounts):
        raise InputError(f"role {contract.role}: the ServiceAccounts {contract.bound_service_accounts} cannot be "
                         "bound exactly by one Vault role (it binds every name in every namespace)")
    return names, namespaces


def dummy_value(key: str) -> str:
    """A value generated per run; JSON-shaped for the keys that hold a JSON document."""
    token = secrets.token_urlsafe(24)
    if key.endswith("_json"):
        return json.dumps({"type": "service_account", "project_id": "cortex-conformance",
                           "private_key_id": secrets.token_hex(20), "private_key": f"dummy-{token}",
                           "client_email": "cortex-api@cortex-conformance.iam.gserviceaccount.com"})
    return f"dummy-{token}"


def contract_content(secret: SecretSpec, values: Mapping[str, Any]) -> str:
    """What the file of `secret` must hold by the contract alone: one key's value as it is, or several
    keys as Go's compact JSON (what the agent's toJSON writes) of exactly those keys."""
    if len(secret.keys) == 1:
        return str(values[secret.keys[0]])
    return _go_json({key: values[key] for key in secret.keys})


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def known_contents(contract: Contract, kv: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """sha256 -> a description, for every key's value and every file's contract content."""
    known: dict[str, str] = {}
    for secret in contract.secrets:
        values = kv[contract.data_path(secret)]
        for key in secret.keys:
            known.setdefault(_sha256(str(values[key])), f"the value of key {key} of {secret.path}")
        known.setdefault(_sha256(contract_content(secret, values)), f"the content of {secret.file}")
    return known


# --- bootstrap -----------------------------------------------------------------------------------


def _ensure_kv2(client: hvac.Client, mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    existing = mounts.get(f"{mount}/")
    if existing is None:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    elif existing.get("type") != "kv" or str((existing.get("options") or {}).get("version")) != "2":
        raise ConformanceError(f"Vault mount {mount}/ exists but is {existing.get('type')} version "
                               f"{(existing.get('options') or {}).get('version')}, not kv version 2")


def _ensure_kubernetes_auth(client: hvac.Client, mount: str) -> None:
    methods = client.sys.list_auth_methods()["data"]
    existing = methods.get(f"{mount}/")
    if existing is None:
        client.sys.enable_auth_method("kubernetes", path=mount)
    elif existing.get("type") != "kubernetes":
        raise ConformanceError(f"Vault auth mount {mount}/ exists but is {existing.get('type')}, not kubernetes")


def _current_values(client: hvac.Client, contract: Contract, secret: SecretSpec) -> dict[str, Any] | None:
    try:
        read = client.secrets.kv.v2.read_secret_version(path=secret.path, mount_point=contract.kv_mount,
                                                        raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None
    data = read["data"]["data"] or {}
    return data if set(data) == set(secret.keys) and all(isinstance(v, str) for v in data.values()) else None


def bootstrap(client: hvac.Client, kube: KubernetesAuth, *, contract: Contract | None = None,
              rotate: bool = False, auth_mount: str = AUTH_MOUNT) -> BootstrapResult:
    """Configure Vault for the contract; returns digests of the files the agent must render.

    The overlay's templates play no part: they are what the live check tests, so a template that
    renders the wrong key must not move the expectation with it."""
    contract = contract or load_contract()
    names, namespaces = role_bindings(contract)
    step = "connecting"
    try:
        step = f"enabling kv-v2 at {contract.kv_mount}/"
        _ensure_kv2(client, contract.kv_mount)
        kv: dict[str, dict[str, Any]] = {}
        written = []
        for secret in contract.secrets:
            step = f"writing secret {contract.kv_mount}/{secret.path}"
            values = None if rotate else _current_values(client, contract, secret)
            if values is None:
                values = {key: dummy_value(key) for key in secret.keys}
                client.secrets.kv.v2.create_or_update_secret(path=secret.path, secret=values,
                                                             mount_point=contract.kv_mount)
                written.append(secret.path)
            kv[contract.data_path(secret)] = values
        digests = {s.file: _sha256(contract_content(s, kv[contract.data_path(s)])) for s in contract.secrets}
        step = f"enabling Kubernetes auth at {auth_mount}/"
        _ensure_kubernetes_auth(client, auth_mount)
        step = f"configuring Kubernetes auth at {auth_mount}/"
        client.auth.kubernetes.configure(kubernetes_host=kube.host, kubernetes_ca_cert=kube.ca_cert,
                                         token_reviewer_jwt=kube.reviewer_jwt, issuer=kube.issuer,
                                         mount_point=auth_mount)
        step = f"writing policy {contract.policy}"
        client.sys.create_or_update_policy(name=contract.policy, policy=policy_text(contract), pretty_print=False)
        step = f"writing role {contract.role}"
        client.auth.kubernetes.create_role(name=contract.role, bound_service_account_names=names,
                                           bound_service_account_namespaces=namespaces, ttl=ROLE_TOKEN_TTL,
                                           policies=[contract.policy], audience=contract.audience,
                                           mount_point=auth_mount)
    except hvac.exceptions.VaultError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConformanceError(f"Vault bootstrap failed while {step}: {detail}") from None
    except OSError as exc:  # requests' connection errors derive from OSError
        raise ConformanceError(f"Vault bootstrap failed while {step}: cannot reach {client.url} ({exc})") from None
    return BootstrapResult(role=contract.role, policy=contract.policy, digests=digests, written=tuple(written),
                           known=known_contents(contract, kv))
