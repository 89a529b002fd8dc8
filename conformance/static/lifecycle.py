"""Which APIs and fields the chosen Kubernetes minor still serves, read from the strict schemas of
every supported minor (kubernetes-validate ships one set per minor).

An apiVersion/kind the chosen minor does not serve, but another supported minor does, was removed
(or is not yet there): the gap names the versions of that kind the chosen minor serves. A field of
an object that the chosen minor's schema does not know, but another minor's does, is named with the
minors that have it. A field the chosen minor documents as deprecated is named with the schema's own
"Deprecated: ..." sentence, which says what replaces it. Pure: files in, gaps out.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from conformance import fixtures
from conformance.static.manifests import K8sObject

# "Deprecated: Use serviceAccountName instead." is how the API documents a deprecated field.
DEPRECATED = re.compile(r"\bDeprecated:\s*([^\n]*?\.)(?:\s|$)")


def _schema_root() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


@cache
def _dir(minor: str) -> Path:
    return _schema_root() / f"v{minor}.0-local-strict"


@cache
def definitions(minor: str) -> dict[str, Any]:
    doc = json.loads((_dir(minor) / "_definitions.json").read_text())
    return doc.get("$defs") or doc.get("definitions") or {}


def _file(kind: str, api_version: str) -> str:
    group, _, version = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


@cache
def _files(minor: str) -> frozenset[str]:
    return frozenset(p.name for p in _dir(minor).iterdir())


@cache
def _kind_definition(minor: str, api_version: str, kind: str) -> str | None:
    """The definitions key of a kind, e.g. io.k8s.api.apps.v1.Deployment (None when not served)."""
    group, _, version = api_version.rpartition("/")
    short = (group or "core").split(".")[0]
    for key, value in definitions(minor).items():
        gvk = value.get("x-kubernetes-group-version-kind") or []
        if any(g.get("kind") == kind and g.get("version") == version and g.get("group", "") == group for g in gvk):
            return key
    candidate = f"io.k8s.api.{short}.{version}.{kind}"
    return candidate if candidate in definitions(minor) else None


def served(minor: str, api_version: str, kind: str) -> bool:
    return _file(kind, api_version) in _files(minor)


def _versions_of(minor: str, api_version: str, kind: str) -> list[str]:
    """Other apiVersions of the same group and kind that `minor` serves."""
    group = api_version.rpartition("/")[0]
    prefix = f"{kind.lower()}-{group.split('.')[0]}-" if group else f"{kind.lower()}-"
    found = []
    for name in sorted(_files(minor)):
        if name.startswith(prefix) and name.endswith(".json"):
            version = name[len(prefix):-len(".json")]
            if "-" not in version:
                found.append(f"{group}/{version}" if group else version)
    return [v for v in found if v != api_version]


def api_gaps(obj: K8sObject, minor: str, others: list[str]) -> list[str]:
    """A kind the chosen minor does not serve while another supported minor does."""
    if not obj.api_version or served(minor, obj.api_version, obj.kind):
        return []
    elsewhere = [m for m in others if served(m, obj.api_version, obj.kind)]
    if not elsewhere:
        return []  # unknown everywhere: the schema check says so
    instead = _versions_of(minor, obj.api_version, obj.kind)
    return [f"{obj.ref}: apiVersion {obj.api_version} is not served by Kubernetes {minor} (only by "
            f"{', '.join(elsewhere)}); " + (f"use {' or '.join(instead)}" if instead else
                                              f"Kubernetes {minor} serves no version of {obj.kind}")]


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in node and seen < 20:
        node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        seen += 1
    for key in ("allOf", "anyOf", "oneOf"):
        for option in node.get(key) or []:
            resolved = _resolve(option, defs)
            if resolved.get("properties"):
                return resolved
    return node


def _walk(value: Any, schema: dict[str, Any], minor: str, path: str, out: list[tuple[str, str, str]]) -> None:
    """(path, problem, detail) for fields unknown to `minor`'s schema or documented there as deprecated."""
    defs = definitions(minor)
    schema = _resolve(schema, defs)
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is None:
            return
        for key, child in value.items():
            where = f"{path}.{key}" if path else key
            if key not in properties:
                if schema.get("additionalProperties") is False:
                    out.append((where, "unknown", ""))
                continue
            described = properties[key].get("description") or ""
            deprecated = DEPRECATED.search(described)
            if deprecated and key not in ("apiVersion", "kind"):
                out.append((where, "deprecated", deprecated.group(1).strip()))
            _walk(child, properties[key], minor, where, out)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, child in enumerate(value):
                _walk(child, items, minor, f"{path}[{i}]", out)


def _has_path(minor: str, definition: str | None, path: str) -> bool:
    """Whether a dotted field path (list indices dropped) exists in `minor`'s schema of a kind."""
    if definition is None:
        return False
    defs = definitions(minor)
    node = defs.get(definition, {})
    for part in re.sub(r"\[\d+\]", "", path).split("."):
        node = _resolve(node, defs)
        if node.get("type") == "array" or "items" in node:
            node = _resolve(node.get("items") or {}, defs)
        properties = node.get("properties") or {}
        if part not in properties:
            return False
        node = properties[part]
    return True


def _shape(value: Any) -> Any:
    """The object with every scalar blanked: two objects of one shape have the same field gaps."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


_SHAPES: dict[tuple[str, str, str, str], list[tuple[str, str, str]]] = {}


def field_gaps(obj: K8sObject, minor: str, others: list[str]) -> list[str]:
    definition = _kind_definition(minor, obj.api_version, obj.kind) if obj.api_version else None
    if definition is None:
        return []
    doc = {k: v for k, v in obj.doc.items() if k != "status"}
    # A bundle repeats objects (10,000 Deployments of one template): walk the schema once per shape.
    key = (minor, obj.api_version, obj.kind, json.dumps(_shape(doc), sort_keys=True))
    found = _SHAPES.get(key)
    if found is None:
        found = []
        _walk(doc, definitions(minor)[definition], minor, "", found)
        _SHAPES[key] = found
    gaps = []
    for path, problem, detail in found:
        if problem == "deprecated":
            gaps.append(f"{obj.ref}: {path} is deprecated in Kubernetes {minor}: {detail}")
            continue
        elsewhere = [m for m in others
                     if _has_path(m, _kind_definition(m, obj.api_version, obj.kind), path)]
        if elsewhere:
            gaps.append(f"{obj.ref}: {path} is a field of Kubernetes {', '.join(elsewhere)}, not of {minor}: the "
                        f"API server of {minor} drops or rejects it")
    return gaps


def gaps(objects: list[K8sObject]) -> list[str]:
    minor = fixtures.pins()["kubernetes"]["minor"]
    others = [m for m in fixtures.supported_minors() if m != minor and _dir(m).is_dir()]
    out = []
    for obj in objects:
        if obj.group.endswith(".istio.io"):
            continue
        out += api_gaps(obj, minor, others)
        out += field_gaps(obj, minor, others)
    return out
