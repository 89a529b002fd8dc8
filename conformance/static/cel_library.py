"""The CEL functions Kubernetes adds for x-kubernetes-validations, on top of the CEL runtime's own.

The runtime (common-expression-language, the Rust cel crate) implements the CEL core: macros,
conversions, size, contains/startsWith/endsWith/matches, timestamps and durations. Kubernetes adds
cel-go's extension libraries (strings, lists, sets, math, encoders: the runtime's `cel.stdlib`) and
libraries of its own; the ones here are those the pinned Istio CRDs call (URLs) and the cheap,
common ones beside them (IP and CIDR predicates, regex find). A rule that calls anything else is
reported as not evaluated, never passed (see cel_rules.py).

CEL treats `x.f(a)` as `f(x, a)`, so `url(s).getScheme()` works with `url` returning a map and
`getScheme` reading it.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import sys
import types
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _import_cel() -> types.ModuleType:
    # The package's __init__ also imports its interactive CLI (typer, rich, prompt_toolkit): half a
    # second or more of start-up on every static run, for nothing the checks use. A placeholder
    # stands in for it unless something imported the real one first.
    if "cel" not in sys.modules:
        sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))
    return importlib.import_module("cel")


cel = _import_cel()
stdlib = importlib.import_module("cel.stdlib")

# Function names the runtime implements natively (operators are spelled `_op_`, `@in`, `!_`, `-_`).
NATIVE = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration", "dyn", "type",
    "contains", "startsWith", "endsWith", "matches",
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek", "getHours",
    "getMinutes", "getSeconds", "getMilliseconds",
})

_URL = "__kubernetes_url__"


class CelFunctionError(ValueError):
    """A Kubernetes library function was given what it cannot handle (the rule then fails, as in k8s)."""


def _is_url(text: str) -> bool:
    # Kubernetes follows Go's url.ParseRequestURI: an absolute URI or an absolute path, no blanks.
    if not isinstance(text, str) or any(ch.isspace() or ord(ch) < 0x20 for ch in text):
        return False
    try:
        parts = urlsplit(text)
        _ = parts.port  # a port that is not a number is a parse error in Go too
    except ValueError:
        return False
    return bool(parts.scheme) or text.startswith("/")


def _url(text: str) -> dict[str, Any]:
    if not _is_url(text):
        raise CelFunctionError(f"URL parse error during conversion from string: {text!r}")
    parts = urlsplit(text)
    return {_URL: True, "scheme": parts.scheme, "host": parts.netloc.rpartition("@")[2],
            "hostname": parts.hostname or "", "port": str(parts.port or ""), "path": parts.path,
            "query": parts.query}


def _part(name: str) -> Callable[[dict[str, Any]], str]:
    def get(url: dict[str, Any]) -> str:
        if not isinstance(url, dict) or _URL not in url:
            raise CelFunctionError(f"{name}() needs a URL, given {type(url).__name__}")
        return url[name]
    return get


def _query(url: dict[str, Any]) -> dict[str, list[str]]:
    return parse_qs(_part("query")(url), keep_blank_values=True)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text  # Kubernetes refuses zones


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _find(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


KUBERNETES: dict[str, Callable[..., Any]] = {
    "isURL": _is_url,
    "url": _url,
    "getScheme": _part("scheme"),
    "getHost": _part("host"),
    "getHostname": _part("hostname"),
    "getPort": _part("port"),
    "getEscapedPath": _part("path"),
    "getQuery": _query,
    "isIP": _is_ip,
    "isCIDR": _is_cidr,
    "find": _find,
    "findAll": _find_all,
}

FUNCTIONS: dict[str, Callable[..., Any]] = {**stdlib.STDLIB_FUNCTIONS, **KUBERNETES}
KNOWN = NATIVE | FUNCTIONS.keys()


def is_operator(name: str) -> bool:
    return name.startswith(("_", "@", "!", "-"))
