"""Object names, namespaces, label and annotation keys as the API server validates them.

The JSON schemas say only that a name is a string; the API server refuses a name that is not a DNS
subdomain (most kinds), a DNS-1123 label (Namespace), a DNS-1035 label (Service: it becomes a DNS
name and must start with a letter), or, for RBAC kinds, a path segment. Label keys and annotation
keys are qualified names (an optional DNS-subdomain prefix and `/`), and label values are at most
63 characters of a restricted alphabet. Each problem comes back as one phrase for a gap.
"""

from __future__ import annotations

import re
from typing import Any

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

LABEL_MAX = 63
SUBDOMAIN_MAX = 253

# Kinds whose names the API server holds to something other than a DNS subdomain.
_LABEL_KINDS = frozenset({"Namespace"})
_LABEL_1035_KINDS = frozenset({"Service"})
_PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def _held_to(value: str, pattern: re.Pattern[str], longest: int, what: str) -> str | None:
    if len(value) > longest:
        return f"is longer than {longest} characters"
    return None if pattern.fullmatch(value) else f"is not {what}"


def dns_label(value: str) -> str | None:
    """Why `value` is not a DNS-1123 label, or None."""
    return _held_to(value, _LABEL, LABEL_MAX, "a DNS-1123 label (lower-case letters, digits and '-', starting and "
                                              "ending alphanumeric)")


def dns_1035_label(value: str) -> str | None:
    return _held_to(value, _LABEL_1035, LABEL_MAX, "a DNS-1035 label (lower-case letters, digits and '-', starting "
                                                   "with a letter and ending alphanumeric)")


def dns_subdomain(value: str) -> str | None:
    return _held_to(value, _SUBDOMAIN, SUBDOMAIN_MAX, "a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', "
                                                      "each part starting and ending alphanumeric)")


def path_segment(value: str) -> str | None:
    if value in (".", "..") or "/" in value or "%" in value:
        return "is not a valid path segment (no '/', '%', '.' or '..')"
    return None


def object_name(kind: str, name: str) -> str | None:
    """Why the API server would refuse `name` for an object of `kind`, or None."""
    if kind in _LABEL_KINDS:
        return dns_label(name)
    if kind in _LABEL_1035_KINDS:
        return dns_1035_label(name)
    if kind in _PATH_SEGMENT_KINDS:
        return path_segment(name)
    return dns_subdomain(name)


def qualified_name(key: str) -> str | None:
    """Why `key` is not a valid label or annotation key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns_subdomain(prefix) is not None):
        return f"has the prefix {prefix!r}, which is not a DNS-1123 subdomain"
    if not name or len(name) > LABEL_MAX or not _QUALIFIED.fullmatch(name):
        return (f"has the name part {name!r}, which is not 1-{LABEL_MAX} letters, digits, '-', '_' or '.' starting "
                "and ending alphanumeric")
    return None


def label_value(value: Any) -> str | None:
    if not isinstance(value, str):
        return None  # the schema reports a value that is not a string
    if len(value) > LABEL_MAX:
        return f"is longer than {LABEL_MAX} characters"
    if value and not _QUALIFIED.fullmatch(value):
        return "is not letters, digits, '-', '_' or '.' starting and ending alphanumeric"
    return None


def metadata_problems(kind: str, metadata: dict[str, Any], namespaced: bool) -> list[str]:
    """Every problem the API server would find in an object's name, namespace, labels and annotation keys."""
    problems = []
    name = metadata.get("name")
    if isinstance(name, str) and (why := object_name(kind, name)) is not None:
        problems.append(f"metadata.name {name!r} {why}")
    namespace = metadata.get("namespace")
    if namespaced and isinstance(namespace, str) and (why := dns_label(namespace)) is not None:
        problems.append(f"metadata.namespace {namespace!r} {why}")
    for where in ("labels", "annotations"):
        values = metadata.get(where)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if (why := qualified_name(str(key))) is not None:
                problems.append(f"metadata.{where} key {key!r} {why}")
            if where == "labels" and (why := label_value(value)) is not None:
                problems.append(f"metadata.labels[{key}] value {value!r} {why}")
    return problems
