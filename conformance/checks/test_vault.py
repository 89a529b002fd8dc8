"""VAULT: no secret in manifests; every secret from the Vault agent, for the bound account only."""

import json

import pytest

from conformance import fixtures
from conformance.live import observe
from conformance.live.traffic import pod_exec
from conformance.plugin import holds
from conformance.static.rules import vault

static = pytest.mark.static


@static
@pytest.mark.control("VAULT-01")
def test_no_plaintext_secrets(bundle):
    """VAULT-01: no Secret data, literal secret env, secret-shaped string or Kubernetes Secret mount."""
    holds(vault.no_plaintext_secrets(bundle))


@static
@pytest.mark.control("VAULT-02")
def test_secrets_from_vault_agent(bundle):
    """VAULT-02: the Vault agent renders every secret of fixtures/expectations/vault.yaml into the pod."""
    holds(vault.secrets_from_vault_agent(bundle))


@static
@pytest.mark.control("VAULT-03")
def test_role_bound_to_workload(bundle):
    """VAULT-03: the Vault role is bound to the workload's ServiceAccount and no other pod asks for it."""
    holds(vault.role_bound_to_workload(bundle))


# --- live ---------------------------------------------------------------------------------------------

live = pytest.mark.live


@live
@pytest.mark.control("VAULT-02")
def test_pods_receive_their_secrets(live, evidence):
    """VAULT-02: each cortex-api pod holds every secret file, with the content Vault was given (by digest)."""
    if live.workload.vault_result is None:
        pytest.skip("this run did not bootstrap Vault (--target existing): the expected digests are unknown")
    files = [live.workload.vault_result.file_path(f) for f in live.workload.vault_result.digests]
    gaps = []
    for pod in observe.api_pods(live.kube):
        name = pod["metadata"]["name"]
        result = pod_exec(live.kube, "cortex-dev", name, ["/standin", "digest", *files], container="cortex-api")
        command = f"kubectl exec -n cortex-dev {name} -c cortex-api -- /standin digest {' '.join(files)}"
        evidence.append({"command": command, "exit_code": result.returncode,
                         "note": "digests compared, values never read"})
        seen = {f["path"]: f.get("sha256") for f in json.loads(result.stdout or '{"files": []}')["files"]}
        for file, digest in live.workload.vault_result.digests.items():
            path = live.workload.vault_result.file_path(file)
            if path not in seen or seen[path] is None:
                gaps.append(f"Pod cortex-dev/{name} container cortex-api: {path} is missing")
            elif seen[path] != digest:
                gaps.append(f"Pod cortex-dev/{name} container cortex-api: {path} differs from what Vault holds")
    holds(gaps)


def _login(live, port: int, service_account: str) -> int:
    import urllib.error
    import urllib.request

    spec = fixtures.expectations("vault")
    token = live.kube.run("create", "token", service_account, "-n", "cortex-dev", "--audience", spec["audience"],
                          "--duration", "10m").stdout.strip()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/auth/kubernetes/login", method="POST",
                                     data=json.dumps({"role": spec["role"], "jwt": token}).encode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - loopback port-forward
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@live
@pytest.mark.control("VAULT-03")
def test_other_service_account_refused(live, evidence):
    """VAULT-03: Vault refuses the role to another ServiceAccount's token and grants it to the workload's."""
    if live.workload.vault_result is None:
        pytest.skip("this run did not configure Vault (--target existing): the role is not ours to test")
    live.kube.run("create", "serviceaccount", "conformance-intruder", "-n", "cortex-dev", check=False)
    with live.kube.port_forward("vault", "service/vault", 8200) as port:
        intruder = _login(live, port, "conformance-intruder")
        workload = _login(live, port, "cortex-api")
    for account, status in (("conformance-intruder", intruder), ("cortex-api", workload)):
        evidence.append({"command": f"POST /v1/auth/kubernetes/login role=cortex-api-dev jwt=<token of {account}>",
                         "status": status})
    gaps = []
    if intruder < 400:
        gaps.append(f"Vault role cortex-api-dev: a token of ServiceAccount cortex-dev/conformance-intruder logged in "
                    f"(HTTP {intruder})")
    if workload != 200:
        gaps.append(f"Vault role cortex-api-dev: the workload's own ServiceAccount was refused (HTTP {workload})")
    holds(gaps)
