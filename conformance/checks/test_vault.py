"""VAULT: no secret in manifests; every secret from the Vault agent, for the bound account only.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import json

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.live.evidence.traffic import pod_exec
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
VAULT = fixtures.expectations("vault")
ROLE_ANNOTATION = "vault.hashicorp.com/role"


@live
@pytest.mark.control("VAULT-02")
def test_pods_receive_their_secrets(live, api_pods, evidence):
    """VAULT-02: each cortex-api pod holds every secret file, with the content Vault was given (by digest)."""
    result = live.workload.vault_result
    if result is None:
        pytest.skip("this run did not bootstrap Vault (--target existing): the expected digests are unknown")
    spec = fixtures.workload()
    files = [result.file_path(s["file"]) for s in VAULT["secrets"]]
    gaps = []
    for pod in api_pods:
        name = pod["metadata"]["name"]
        found = pod_exec(live.kube, spec.namespace, name, ["/standin", "digest", *files], container=spec.name)
        evidence.append({"command": f"kubectl exec -n {spec.namespace} {name} -c {spec.name} -- /standin digest "
                                    f"{' '.join(files)}", "exit_code": found.returncode,
                         "note": "digests compared, values never read"})
        try:
            seen = {f["path"]: f.get("sha256") for f in json.loads(found.stdout)["files"]}
        except (json.JSONDecodeError, KeyError):
            gaps.append(f"Pod {spec.namespace}/{name} container {spec.name}: could not read the secret files "
                        f"({(found.stderr or found.stdout).strip()[-160:] or f'exit {found.returncode}'})")
            continue
        for secret in VAULT["secrets"]:
            path = result.file_path(secret["file"])
            if seen.get(path) is None:
                gaps.append(f"Pod {spec.namespace}/{name} container {spec.name}: {path} is missing")
            elif seen[path] != result.digests[secret["file"]]:
                gaps.append(f"Pod {spec.namespace}/{name} container {spec.name}: {path} differs from what Vault holds")
    holds(gaps)


def _login(live, port: int, service_account: str) -> tuple[int, str]:
    """Log in with the expected role and a token of `service_account`: (HTTP status, Vault's first error)."""
    import urllib.error
    import urllib.request

    namespace = fixtures.workload().namespace
    token = live.kube.run("create", "token", service_account, "-n", namespace, "--audience", VAULT["audience"],
                          "--duration", "10m").stdout.strip()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/auth/kubernetes/login", method="POST",
                                     data=json.dumps({"role": VAULT["role"], "jwt": token}).encode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - loopback port-forward
            return response.status, ""
    except urllib.error.HTTPError as exc:
        try:
            errors = json.loads(exc.read() or b"{}").get("errors") or []
        except json.JSONDecodeError:
            errors = []
        return exc.code, (errors[0] if errors else "")[:160]
    except (urllib.error.URLError, OSError) as exc:
        return 0, f"Vault did not answer: {exc}"[:160]


@live
@pytest.mark.control("VAULT-03")
def test_role_bound_to_workload_only(live, api_pods, evidence):
    """VAULT-03: the pods ask for the expected role as the expected account; Vault grants it to that account only."""
    if live.workload.vault_result is None:
        pytest.skip("this run did not configure Vault (--target existing): the role is not ours to test")
    spec = fixtures.workload()
    role, account = VAULT["role"], VAULT["bound_service_accounts"][0]
    gaps = []
    for pod in api_pods:
        name = f"Pod {spec.namespace}/{pod['metadata']['name']}"
        asked = (pod["metadata"].get("annotations") or {}).get(ROLE_ANNOTATION)
        if asked != role:
            gaps.append(f"{name}: asks Vault for role {asked or 'none'}, not the expected {role}")
        runs_as = pod["spec"].get("serviceAccountName") or "default"
        if (pod["metadata"]["namespace"], runs_as) != (account["namespace"], account["name"]):
            gaps.append(f"{name}: runs as ServiceAccount {runs_as}, not {account['name']}, which role {role} is "
                        "bound to")
    live.kube.run("create", "serviceaccount", "conformance-intruder", "-n", spec.namespace, check=False)
    try:
        with live.kube.port_forward("vault", "service/vault", VAULT["port"]) as port:
            intruder = _login(live, port, "conformance-intruder")
            workload = _login(live, port, account["name"])
    except ConformanceError as exc:
        pytest.fail(f"Vault role {role}: could not reach Vault to log in: {exc}", pytrace=False)
    for who, (status, error) in (("conformance-intruder", intruder), (account["name"], workload)):
        evidence.append({"command": f"POST /v1/auth/kubernetes/login role={role} jwt=<token of {who}>",
                         "status": status, **({"note": error} if error else {})})
    if not 400 <= intruder[0] < 500:
        gaps.append(f"Vault role {role}: a token of ServiceAccount {spec.namespace}/conformance-intruder got HTTP "
                    f"{intruder[0]}, not a refusal" + (f" ({intruder[1]})" if intruder[1] else ""))
    if workload[0] != 200:
        gaps.append(f"Vault role {role}: the workload's own ServiceAccount {account['name']} was refused "
                    f"(HTTP {workload[0]}{f': {workload[1]}' if workload[1] else ''})")
    holds(gaps)
