"""Per-run JWT material for the JWT checks: signing keys, their JWKS, and one token per case.

The cases and their expected statuses are data (fixtures/expectations/jwt.yaml). The issuer and
audience are read from the RequestAuthentication of the rendered overlay, so the tokens follow
the manifests rather than a copy of them. Keys are generated per run and live only in memory;
a token is never part of a repr, so neither test ids nor failure messages can leak one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance import fixtures
from conformance.errors import InputError
from conformance.paths import EXPECTATIONS
from conformance.static.manifests import Bundle
from conformance.static.mesh import workload_policies

JWT_CASES = EXPECTATIONS / "jwt.yaml"
WORKLOAD = fixtures.workload().name

_CASE_KEYS = {"name", "why", "status", "token", "raw", "key", "alg", "claims", "times", "transport", "signature"}
_DEFAULT_KEYS = {"key", "alg", "claims", "times", "transport"}
_TRANSPORTS = {"header", "query"}
_KEYS = {"primary", "foreign"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKeys:
    """The run's trusted key (published in the JWKS) and a foreign one (never published)."""

    primary: rsa.RSAPrivateKey = field(repr=False)
    foreign: rsa.RSAPrivateKey = field(repr=False)

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the trusted key."""
        numbers = self.primary.public_key().public_numbers()
        canonical = json.dumps({"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
                               separators=(",", ":"), sort_keys=True)
        return _b64url(hashlib.sha256(canonical.encode()).digest())

    def jwks(self) -> dict[str, Any]:
        numbers = self.primary.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}]}

    def jwks_json(self) -> str:
        return json.dumps(self.jwks(), separators=(",", ":"))


def generate_keys() -> SigningKeys:
    return SigningKeys(primary=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                       foreign=rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass(frozen=True)
class TokenCase:
    """One row of the rejection matrix. The token stays out of repr, ids and messages."""

    name: str
    why: str
    status: int
    transport: str
    token: str | None = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        if self.token is None or self.transport != "header":
            return {}
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def query(self) -> dict[str, str]:
        if self.token is None or self.transport != "query":
            return {}
        return {"access_token": self.token}


@dataclass(frozen=True)
class TokenSet:
    issuer: str
    audience: str
    jwks: dict[str, Any]
    cases: tuple[TokenCase, ...]

    def case(self, name: str) -> TokenCase:
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(f"no token case {name!r}; known: {', '.join(c.name for c in self.cases)}")


@dataclass(frozen=True)
class JwtRule:
    """What the verifier is told about one issuer, read from a RequestAuthentication jwtRule."""

    issuer: str
    audiences: tuple[str, ...]


def load_cases(path: Path = JWT_CASES) -> dict[str, Any]:
    """jwt.yaml, checked for shape so that a typo fails as one line instead of a wrong token."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the token cases: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise InputError(f"{path}: expected a mapping with a 'cases' list")
    defaults = data.get("defaults") or {}
    unknown = set(defaults) - _DEFAULT_KEYS
    if unknown:
        raise InputError(f"{path}: unknown defaults key(s) {', '.join(sorted(unknown))}")
    seen: set[str] = set()
    for case in data["cases"]:
        name = case.get("name") if isinstance(case, dict) else None
        if not name:
            raise InputError(f"{path}: every case needs a name")
        if name in seen:
            raise InputError(f"{path}: case {name} appears twice")
        seen.add(name)
        unknown = set(case) - _CASE_KEYS
        if unknown:
            raise InputError(f"{path}: case {name}: unknown key(s) {', '.join(sorted(unknown))}")
        if not isinstance(case.get("status"), int):
            raise InputError(f"{path}: case {name}: status must be an HTTP status code")
        if case.get("transport", defaults.get("transport", "header")) not in _TRANSPORTS:
            raise InputError(f"{path}: case {name}: transport must be one of {', '.join(sorted(_TRANSPORTS))}")
        if case.get("key", defaults.get("key", "primary")) not in _KEYS:
            raise InputError(f"{path}: case {name}: key must be primary or foreign")
        if case.get("signature", "empty") not in {"empty", "bogus"}:
            raise InputError(f"{path}: case {name}: signature must be empty or bogus")
        if case.get("token", "minted") not in {"minted", "none"}:
            raise InputError(f"{path}: case {name}: token may only be 'none'")
    return data


def jwt_rules(bundle: Bundle, workload: str = WORKLOAD) -> list[JwtRule]:
    rules = [JwtRule(issuer=r["issuer"], audiences=tuple(r.get("audiences") or ()))
             for ra in workload_policies(bundle, workload)[0]
             for r in ra.spec.get("jwtRules") or [] if r.get("issuer")]
    if not rules:
        raise InputError(f"no RequestAuthentication with a jwtRule selects {workload}: there is no issuer to mint for")
    return rules


def mint(rules: list[JwtRule], keys: SigningKeys, *, cases_path: Path = JWT_CASES,
         now: int | None = None) -> TokenSet:
    """One token per case of jwt.yaml, for the first trusted issuer and its first audience."""
    rule = rules[0]
    if not rule.audiences:
        raise InputError(f"the jwtRule for {rule.issuer} lists no audiences, so a token for another "
                         "audience would be accepted: add audiences to the RequestAuthentication")
    spec = load_cases(cases_path)
    trusted = {r.issuer for r in rules}
    now = int(time.time()) if now is None else now
    defaults = spec.get("defaults") or {}
    placeholders = {"$issuer": rule.issuer, "$audience": rule.audiences[0]}
    cases = []
    for case in spec["cases"]:
        own_issuer = (case.get("claims") or {}).get("iss")
        if own_issuer is not None and placeholders.get(own_issuer, own_issuer) in trusted:
            # A "wrong" issuer that the overlay trusts would make the case pass for the wrong reason.
            raise InputError(f"{cases_path}: case {case['name']} sets iss to an issuer the overlay trusts")
        token = _token_for(case, defaults, keys, placeholders, now)
        cases.append(TokenCase(name=case["name"], why=case.get("why", ""), status=case["status"],
                               transport=case.get("transport", defaults.get("transport", "header")), token=token))
    return TokenSet(issuer=rule.issuer, audience=rule.audiences[0], jwks=keys.jwks(), cases=tuple(cases))


def mint_for_overlay(bundle: Bundle, keys: SigningKeys, *, cases_path: Path = JWT_CASES,
                     now: int | None = None) -> TokenSet:
    return mint(jwt_rules(bundle), keys, cases_path=cases_path, now=now)


def _token_for(case: Mapping[str, Any], defaults: Mapping[str, Any], keys: SigningKeys,
               placeholders: Mapping[str, str], now: int) -> str | None:
    if case.get("token") == "none":
        return None
    if "raw" in case:
        return str(case["raw"])
    claims = {k: placeholders.get(v, v) if isinstance(v, str) else v
              for k, v in {**(defaults.get("claims") or {}), **(case.get("claims") or {})}.items()}
    times = {**(defaults.get("times") or {}), **(case.get("times") or {})}
    claims.update({name: now + int(offset) for name, offset in times.items()})
    alg = case.get("alg", defaults.get("alg", "RS256"))
    if alg == "none":
        header = {"alg": "none", "typ": "JWT"}
        # An empty third part is the classic form; a bogus one gets past the shape check to the alg check.
        signature = _b64url(b"not-a-signature") if case.get("signature") == "bogus" else ""
        return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}.{signature}"
    key = keys.primary if case.get("key", defaults.get("key", "primary")) == "primary" else keys.foreign
    # The foreign key signs under the trusted kid, so the verifier must check the signature itself
    # rather than reject an unknown kid.
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": keys.kid})
