"""Manifests broken on purpose: apply the patches of fixtures/mutations.yaml to a copy of a bundle."""

from __future__ import annotations

import copy
import re
from typing import Any

from conformance.static.manifests import Bundle, K8sObject

TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def parse_path(path: str) -> list[Any]:
    """`a.b[0].c[name=x].d[some.key]` -> ["a", "b", 0, "c", ("name", "x"), "d", "some.key"].

    In `[key=value]` the key may be a dotted path inside the item (`[to.0.ipBlock.cidr=0.0.0.0/0]`),
    so that a mutation names the list item by what it is, not by a position another change shifts.
    """
    parts: list[Any] = []
    for plain, bracket in TOKEN.findall(path):
        if plain:
            parts.append(plain)
        elif bracket.isdigit():
            parts.append(int(bracket))
        elif "=" in bracket:
            key, _, value = bracket.partition("=")
            parts.append((key, value))
        else:
            parts.append(bracket)
    return parts


def _has(item: Any, key: str, value: str) -> bool:
    node = item
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return node == value or str(node) == value


def _step(node: Any, part: Any, create: bool) -> Any:
    if isinstance(part, tuple):
        key, value = part
        return next(item for item in node if _has(item, key, value))
    if isinstance(part, int):
        return node[part]
    if part not in node and create:
        node[part] = {}
    return node[part]


def _set(doc: dict, parts: list[Any], op: str, value: Any) -> None:
    node = doc
    for part in parts[:-1]:
        node = _step(node, part, create=op == "set")
    last = parts[-1]
    if isinstance(last, tuple):
        index = next(i for i, item in enumerate(node) if _has(item, last[0], last[1]))
        last = index
    if op == "set":
        node[last] = copy.deepcopy(value)
    elif op == "remove":
        del node[last]
    elif op == "append":
        node.setdefault(last, []).append(copy.deepcopy(value)) if isinstance(node, dict) else node[last].append(
            copy.deepcopy(value))
    else:
        raise ValueError(f"unknown op {op}")


def apply(bundle: Bundle, patches: list[dict[str, Any]]) -> Bundle:
    objects = [K8sObject(copy.deepcopy(obj.doc), obj.source) for obj in bundle.objects]
    for patch in patches:
        op = patch.get("op", "set")
        if op == "add":
            objects.append(K8sObject(copy.deepcopy(patch["value"]), "mutation"))
            continue
        kind, _, name = patch["target"].partition("/")
        index = next(i for i, obj in enumerate(objects) if obj.kind == kind and obj.name == name)
        if op == "delete":
            del objects[index]
            continue
        _set(objects[index].doc, parse_path(patch["path"]), op, patch.get("value"))
    return Bundle(name=bundle.name, source=f"{bundle.source} (mutated)", text=bundle.text, objects=objects)
