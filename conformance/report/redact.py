"""Redaction: no credential the suite saw may reach a report that gets attached to a release.

Live checks carry per-run tokens in their probe commands and headers, and a failing Vault
check may quote what it read. Everything the report embeds goes through :func:`redact` before
rendering, and every rendered file is checked again with :func:`find_secrets`, so a pattern
that rendering could reassemble is caught before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MARK = "[REDACTED"

# A value already replaced must not be counted, or matched, a second time.
_NOT_DONE = r"(?!\[REDACTED)"
# A credential in a header or an assignment ends at whitespace or at the quote around it.
# The auth scheme is matched possessively, so that a redacted token after it is never taken
# for the credential and the scheme itself redacted instead.
_VALUE = r"[^\s'\",;<>&]+"

# Header and field names whose whole value is a credential, compared lower-case.
SECRET_KEYS = frozenset({
    "authorization", "proxy-authorization", "x-vault-token", "cookie", "set-cookie",
    "token", "access_token", "id_token", "refresh_token", "client_secret", "secret",
    "password", "private_key", "api_key", "x-api-key", "signing_secret", "bot_token",
})

_Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]


def _whole(kind: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: f"[REDACTED:{kind}]"


def _keep_prefix(kind: str) -> Callable[[re.Match[str]], str]:
    # The header name or scheme stays: a reader must still see which credential was sent.
    return lambda m: f"{m.group(1)}[REDACTED:{kind}]"


# Ordered: whole blocks and self-identifying tokens first, so that a header rule never
# leaves half of a JWT behind.
RULES: tuple[_Rule, ...] = (
    ("private-key", re.compile(
        r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S),
     _whole("private-key")),
    ("jwt", re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,4}"), _whole("jwt")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
     _whole("github-token")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), _whole("slack-token")),
    ("openai-key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"), _whole("openai-key")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), _whole("google-api-key")),
    ("aws-access-key", re.compile(r"\bAKIA[0-9A-Z]{16}\b"), _whole("aws-access-key")),
    ("vault-token", re.compile(r"(?<![A-Za-z0-9_.-])(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}"),
     _whole("vault-token")),
    ("authorization", re.compile(
        rf"(?i)(\b(?:proxy-)?authorization\s*[:=]\s*(?:(?:bearer|basic|token|negotiate|digest)\s+)?+)"
        rf"{_NOT_DONE}{_VALUE}"), _keep_prefix("authorization")),
    ("bearer", re.compile(rf"(?i)(\bbearer\s+){_NOT_DONE}[A-Za-z0-9._~+/-]{{16,}}=*"),
     _keep_prefix("bearer")),
    ("vault-token", re.compile(rf"(?i)(\bx-vault-token\s*[:=]\s*){_NOT_DONE}{_VALUE}"),
     _keep_prefix("vault-token")),
    ("query-credential", re.compile(
        rf"(?i)([?&](?:access_token|id_token|token|client_secret|api_key|key)=){_NOT_DONE}[^&\s'\"#<>]+"),
     _keep_prefix("query-credential")),
    ("assignment", re.compile(
        rf"(\b[A-Za-z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|PRIVATE_KEY)[A-Za-z0-9_]*=)"
        rf"{_NOT_DONE}{_VALUE}"), _keep_prefix("assignment")),
    ("json-field", re.compile(
        r"(?i)(\"[^\"]*(?:token|secret|password|api_key|private_key)[^\"]*\"\s*:\s*\")"
        rf"{_NOT_DONE}[^\"]+(?=\")"), _keep_prefix("json-field")),
)


def redact_text(text: str) -> tuple[str, int]:
    """Return ``text`` with every credential replaced, and the number of replacements."""
    total = 0
    for _kind, pattern, replace in RULES:
        text, count = pattern.subn(replace, text)
        total += count
    return text, total


def secret_key(key: Any) -> str | None:
    """The credential a field name stands for, or None.

    Span attributes name headers by a dotted path (``http.request.header.authorization``), so
    the last segment counts as well as the whole name.
    """
    if not isinstance(key, str):
        return None
    name = key.lower()
    last = name.rsplit(".", 1)[-1]
    return name if name in SECRET_KEYS else (last if last in SECRET_KEYS else None)


def _whole_value(kind: str, item: Any) -> tuple[Any, int] | None:
    if isinstance(item, str) and item and not item.startswith(MARK):
        return f"[REDACTED:{kind}]", 1
    if isinstance(item, list) and item and all(isinstance(i, str) for i in item):
        values = [_whole_value(kind, i) or (i, 0) for i in item]
        return [v for v, _ in values], sum(n for _, n in values)
    return None


def redact(value: Any) -> tuple[Any, int]:
    """Redact every string inside a JSON-like value; a credential-named field loses its value whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        items = [redact(item) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        total = 0
        for key, item in value.items():
            kind = secret_key(key)
            whole = _whole_value(kind, item) if kind else None
            out[key], count = whole if whole is not None else redact(item)
            total += count
        return out, total
    return value, 0


def find_secrets(text: str) -> list[str]:
    """Names of the credential kinds still present in ``text``; empty when it is clean."""
    return sorted({kind for kind, pattern, _ in RULES if pattern.search(text)})
