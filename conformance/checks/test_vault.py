"""VAULT: no secret in manifests; every secret from the Vault agent, for the bound account only.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import json

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.live.evidence import judge
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
    """VAULT-02: each cortex-api pod holds every secret file of vault.yaml, with exactly the content the contract
    gives it from the values the suite wrote (compared by digest; a template that renders another key fails)."""
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
                         "note": "digests compared with the contract's content of each file, values never read"})
        where = f"Pod {spec.namespace}/{name} container {spec.name}"
        try:
            seen = {f["path"]: f for f in json.loads(found.stdout)["files"]}
        except (json.JSONDecodeError, KeyError, TypeError):
            gaps.append(f"{where}: could not read the secret files "
                        f"({(found.stderr or found.stdout).strip()[-160:] or f'exit {found.returncode}'})")
            continue
        for secret in VAULT["secrets"]:
            path = result.file_path(secret["file"])
            keys = secret["keys"]
            what = (f"key {keys[0]} of {secret['path']}" if len(keys) == 1
                    else f"keys {', '.join(keys)} of {secret['path']} as JSON")
            gaps += judge.secret_file_gaps(where, path, seen.get(path), result.digests[secret["file"]], what,
                                           result.known)
    holds(gaps)


INTRUDER = "conformance-intruder"
# Where the intruders live: the workload's own namespace (a role bound to every account there) and a
# namespace of another team the suite creates (a role bound across namespaces).
INTRUDER_NAMESPACES = (fixtures.workload().namespace, "conformance-unrelated")


def _login(live, port: int, role: str, namespace: str, service_account: str) -> tuple[int, str, list[str]]:
    """Log in with `role` and a token of `namespace/service_account`: (HTTP status, Vault's first error, the
    token's policies)."""
    import urllib.error
    import urllib.request

    made = live.kube.run("create", "token", service_account, "-n", namespace, "--audience", VAULT["audience"],
                         "--duration", "10m", check=False)
    if made.returncode != 0:
        return 0, f"no token for {namespace}/{service_account}: {made.stderr.strip()[-120:]}", []
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/auth/kubernetes/login", method="POST",
                                     data=json.dumps({"role": role, "jwt": made.stdout.strip()}).encode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - loopback port-forward
            auth = (json.loads(response.read() or b"{}").get("auth") or {})
            return response.status, "", sorted(auth.get("token_policies") or [])
    except urllib.error.HTTPError as exc:
        try:
            errors = json.loads(exc.read() or b"{}").get("errors") or []
        except json.JSONDecodeError:
            errors = []
        return exc.code, (errors[0] if errors else "")[:160], []
    except (urllib.error.URLError, OSError) as exc:
        return 0, f"Vault did not answer: {exc}"[:160], []


@live
@pytest.mark.control("VAULT-03")
def test_role_bound_to_workload_only(live, api_pods, evidence):
    """VAULT-03: the role the pods ask for, as the account they run as, is vault.yaml's; Vault grants that role to
    that account only, with vault.yaml's policy only."""
    if live.workload.vault_result is None:
        pytest.skip("this run did not configure Vault (--target existing): the role is not ours to test")
    spec = fixtures.workload()
    role, account = VAULT["role"], VAULT["bound_service_accounts"][0]
    gaps = []
    # What the manifests ship, as admitted: the role annotation and the ServiceAccount of each pod. The logins
    # below use these, not vault.yaml's names, so a manifest that asks for another role is tested as shipped.
    shipped: set[tuple[str, str, str]] = set()
    for pod in api_pods:
        name = f"Pod {spec.namespace}/{pod['metadata']['name']}"
        asked = (pod["metadata"].get("annotations") or {}).get(ROLE_ANNOTATION)
        runs_as = pod["spec"].get("serviceAccountName") or "default"
        if asked != role:
            gaps.append(f"{name}: asks Vault for role {asked or 'none'}, not {role}, which vault.yaml names")
        if (pod["metadata"]["namespace"], runs_as) != (account["namespace"], account["name"]):
            gaps.append(f"{name}: runs as ServiceAccount {runs_as}, not {account['name']}, which vault.yaml binds "
                        f"role {role} to")
        if asked:
            shipped.add((asked, pod["metadata"]["namespace"], runs_as))
    if not shipped:
        holds(gaps or [f"{spec.ref('Deployment')}: no pod asks Vault for a role, so no login could be tried"])
    for namespace in INTRUDER_NAMESPACES:
        live.kube.run("create", "serviceaccount", INTRUDER, "-n", namespace, check=False)
    try:
        with live.kube.port_forward("vault", "service/vault", VAULT["port"]) as port:
            tried = [(asked, ns, sa, "workload", _login(live, port, asked, ns, sa))
                     for asked, ns, sa in sorted(shipped)]
            tried += [(asked, ns, INTRUDER, "intruder", _login(live, port, asked, ns, INTRUDER))
                      for asked in sorted({r for r, _, _ in shipped}) for ns in INTRUDER_NAMESPACES]
    except ConformanceError as exc:
        pytest.fail(f"Vault role {role}: could not reach Vault to log in: {exc}", pytrace=False)
    for asked, ns, sa, who, (status, error, policies) in tried:
        evidence.append({"command": f"POST /v1/auth/kubernetes/login role={asked} jwt=<token of {ns}/{sa}>",
                         "status": status, "note": f"{who}" + (f": {error}" if error else "")
                         + (f"; policies {', '.join(policies)}" if policies else "")})
        if who == "intruder":
            if status == 200:
                gaps.append(f"Vault role {asked} (the pods ask for it): a token of ServiceAccount {ns}/{sa} logged in; "
                            f"the role must admit {account['namespace']}/{account['name']} only")
            elif not 400 <= status < 500:
                gaps.append(f"Vault role {asked}: a token of ServiceAccount {ns}/{sa} got HTTP {status}, not a "
                            "refusal" + (f" ({error})" if error else ""))
        elif status != 200:
            gaps.append(f"Vault role {asked}: the pods' own ServiceAccount {ns}/{sa} was refused "
                        f"(HTTP {status}{f': {error}' if error else ''})")
        elif set(policies) - {"default"} != {VAULT["policy"]}:
            gaps.append(f"Vault role {asked}: a login as {ns}/{sa} gets policies {', '.join(policies)}, not "
                        f"{VAULT['policy']} alone as vault.yaml says")
    holds(gaps)
