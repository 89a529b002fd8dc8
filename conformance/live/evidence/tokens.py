"""Per-run JWT material for the JWT checks: signing keys, their JWKS, and one token per case.

The cases, their expected statuses and the issuer and audience the tokens are minted for are data
(fixtures/expectations/jwt.yaml), never read from the manifests under test. Keys are generated
per run and live only in memory; a token is never part of a repr, so neither test ids nor failure
messages can leak one.
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance import fixtures
from conformance.errors import InputError
from conformance.paths import EXPECTATIONS

JWT_CASES = EXPECTATIONS / "jwt.yaml"

_TOP_KEYS = {"issuer", "audiences", "jwks_uri", "defaults", "cases"}
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

    def to_pem(self) -> dict[str, str]:
        """Both keys as unencrypted PKCS#8 PEM: only for a Secret on the suite's own kind cluster."""
        return {role: key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
                for role, key in (("primary", self.primary), ("foreign", self.foreign))}

    @classmethod
    def from_pem(cls, pem: dict[str, str]) -> SigningKeys:
        return cls(**{role: serialization.load_pem_private_key(pem[role].encode(), password=None)
                      for role in ("primary", "foreign")})


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


def load_cases(path: Path = JWT_CASES) -> dict[str, Any]:
    """jwt.yaml, checked for shape so that a typo fails as one line instead of a wrong token."""
    data = fixtures.load_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise InputError(f"{path}: expected a mapping with a 'cases' list")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
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


def mint(keys: SigningKeys, *, cases_path: Path = JWT_CASES, now: int | None = None,
         jti: str | None = None) -> TokenSet:
    """One token per case of jwt.yaml, for the issuer and first audience jwt.yaml expects; with `jti`,
    each signed token carries it, so the tokens are this set's alone (a log line can be told apart).

    The tokens follow the expectations, never the manifests: a RequestAuthentication that names
    another issuer or audience must refuse the valid token, and the live tier sees it do so.
    """
    spec = load_cases(cases_path)
    issuer, audiences = spec.get("issuer"), spec.get("audiences") or []
    if not issuer or not audiences:
        raise InputError(f"{cases_path}: the expected issuer and audiences are not set")
    now = int(time.time()) if now is None else now
    defaults = spec.get("defaults") or {}
    placeholders = {"$issuer": issuer, "$audience": audiences[0]}
    cases = []
    for case in spec["cases"]:
        own_issuer = (case.get("claims") or {}).get("iss")
        if own_issuer is not None and placeholders.get(own_issuer, own_issuer) == issuer:
            # A "wrong" issuer that is the trusted one would make the case pass for the wrong reason.
            raise InputError(f"{cases_path}: case {case['name']} sets iss to the expected issuer")
        token = _token_for(case, defaults, keys, placeholders, now, jti)
        cases.append(TokenCase(name=case["name"], why=case.get("why", ""), status=case["status"],
                               transport=case.get("transport", defaults.get("transport", "header")), token=token))
    return TokenSet(issuer=issuer, audience=audiences[0], jwks=keys.jwks(), cases=tuple(cases))


def _token_for(case: Mapping[str, Any], defaults: Mapping[str, Any], keys: SigningKeys,
               placeholders: Mapping[str, str], now: int, jti: str | None = None) -> str | None:
    if case.get("token") == "none":
        return None
    if "raw" in case:
        return str(case["raw"])
    claims = {k: placeholders.get(v, v) if isinstance(v, str) else v
              for k, v in {**(defaults.get("claims") or {}), **(case.get("claims") or {})}.items()}
    times = {**(defaults.get("times") or {}), **(case.get("times") or {})}
    claims.update({name: now + int(offset) for name, offset in times.items()})
    if jti is not None:
        claims["jti"] = jti
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
