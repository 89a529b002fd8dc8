"""Redaction rules one by one: each credential shape goes, and ordinary evidence stays readable.

Every secret below is generated for this run; none is a real credential.
"""

from __future__ import annotations

import secrets
import string

import pytest

from conformance.report.redact import find_secrets, redact, redact_text

ALNUM = string.ascii_letters + string.digits


def _r(n: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def _jwt() -> str:
    return f"eyJ{_r(30)}.eyJ{_r(60)}.{secrets.token_urlsafe(64)}"


CASES = {
    "jwt": lambda: (f"token was {(t := _jwt())}", t),
    "alg-none-jwt": lambda: (f"sent {(t := 'eyJhbGciOiJub25lIn0.eyJ' + _r(40) + '.')} unsigned", t[20:]),
    "vault-service-token": lambda: (f"renewed {(t := 'hvs.' + secrets.token_urlsafe(70))}", t),
    "vault-batch-token": lambda: (f"batch {(t := 'hvb.' + secrets.token_urlsafe(70))}", t),
    "vault-legacy-token": lambda: (f"VAULT said {(t := 's.' + _r(24))} ok", t),
    "private-key": lambda: ((t := "-----BEGIN RSA PRIVATE KEY-----\n" + _r(64) + "\n" + _r(64)
                             + "\n-----END RSA PRIVATE KEY-----") + "\nafter", t),
    "truncated-private-key": lambda: ("-----BEGIN PRIVATE KEY-----\n" + (t := _r(64)), t),
    "authorization-header": lambda: (f"-H 'Authorization: Bearer {(t := _r(12))}'", t),
    "authorization-basic": lambda: (f"authorization: Basic {(t := _r(20))}=", t),
    "x-vault-token-header": lambda: (f'-H "X-Vault-Token: {(t := _r(10))}"', t),
    "bearer-alone": lambda: (f"Bearer {(t := secrets.token_urlsafe(24))}", t),
    "query-token": lambda: (f"https://gw/v1?access_token={(t := _r(30))}&x=1", t),
    "env-assignment": lambda: (f"VAULT_TOKEN={(t := _r(16))} bao read", t),
    "json-field": lambda: (f'{{"client_secret": "{(t := _r(16))}"}}', t),
    "github-token": lambda: (f"value {(t := 'ghp_' + _r(36))}", t),
    "slack-token": lambda: (f"value {(t := 'xoxb-' + _r(12) + '-' + _r(24))}", t),
    "openai-key": lambda: (f"value {(t := 'sk-proj-' + secrets.token_urlsafe(40))}", t),
}


@pytest.mark.parametrize("case", list(CASES))
def test_credential_is_removed_from_text(case):
    """Each credential shape is replaced, and the text left no longer looks like a credential."""
    text, secret = CASES[case]()
    out, count = redact_text(text)
    assert secret not in out
    assert count >= 1
    assert find_secrets(out) == []


@pytest.mark.parametrize("header", ["Authorization", "x-vault-token", "Cookie", "proxy-authorization"])
def test_credential_header_loses_its_whole_value(header):
    """A header that carries a credential is replaced whole, whatever its value looks like."""
    value = _r(6)
    out, count = redact({"headers": {header: value, "content-type": "application/json"}})
    assert out == {"headers": {header: f"[REDACTED:{header.lower()}]", "content-type": "application/json"}}
    assert count == 1


def test_redaction_is_idempotent():
    """Redacting redacted text changes nothing and counts nothing."""
    once, _ = redact_text(f"-H 'Authorization: Bearer {_jwt()}' -H 'X-Vault-Token: hvs.{_r(40)}'")
    twice, count = redact_text(once)
    assert (twice, count) == (once, 0)


def test_scheme_and_header_name_stay_readable():
    """The reader still sees which header and scheme were sent."""
    out, _ = redact_text(f"curl -H 'Authorization: Bearer {_jwt()}' https://gw")
    assert out == "curl -H 'Authorization: Bearer [REDACTED:jwt]' https://gw"


@pytest.mark.parametrize("text", [
    "By=spiffe://cluster.local/ns/cortex-dev/sa/cortex-api;Hash=4c1d2b;URI=spiffe://cluster.local/ns/x/sa/y",
    "sha256:1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718293a4b5c6d7e8f9012",
    "conformance/checks/static/test_sec.py::test_read_only_root_filesystem[dev]",
    "RequestAuthentication alone rejects only bad tokens; a request with no token passes.",
    "Plain HTTP exposes bearer tokens on the wire.",
    "www-authenticate: Bearer realm=\"https://cortex.dev.example.com\", error=\"invalid_token\"",
    "curl exit 56: connection reset by peer",
    "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
], ids=["xfcc", "digest", "test-id", "rationale", "prose-bearer", "www-authenticate", "curl-exit", "image"])
def test_ordinary_evidence_is_left_alone(text):
    """Identities, digests, test ids and prose are not mistaken for credentials."""
    assert redact_text(text) == (text, 0)


def test_non_strings_pass_through():
    """Numbers, booleans and None are kept as they are."""
    assert redact({"status": 403, "exit_code": 0, "observed": False, "reason": None}) == (
        {"status": 403, "exit_code": 0, "observed": False, "reason": None}, 0)


@pytest.mark.parametrize("key", ["http.request.header.authorization", "request.header.x-vault-token",
                                 "upstream.cookie"])
def test_dotted_attribute_named_for_a_credential_loses_its_value(key):
    """A span attribute names a header by a dotted path; its last segment decides, whatever the value."""
    out, count = redact({"attributes": {key: "Basic " + _r(6), "http.method": "GET"}})
    kind = key.rsplit(".", 1)[-1]
    assert out == {"attributes": {key: f"[REDACTED:{kind}]", "http.method": "GET"}}
    assert count == 1


def test_list_valued_credential_field_loses_every_value():
    """OpenTelemetry records a header as a list of strings: each is replaced."""
    out, count = redact({"http.request.header.authorization": [_r(8), _r(8)]})
    assert out == {"http.request.header.authorization": ["[REDACTED:authorization]"] * 2}
    assert count == 2


def test_name_that_merely_ends_like_a_credential_is_kept():
    """Only a whole segment counts: a field such as token_count is not a credential."""
    assert redact({"token_count": "12", "tls.secret_name": "cortex-api-tls"}) == (
        {"token_count": "12", "tls.secret_name": "cortex-api-tls"}, 0)
