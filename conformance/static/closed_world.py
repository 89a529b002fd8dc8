"""The closed world: what fixtures/expectations/closed_world.yaml does not name is a finding.

Every object the bundle ships (in a governed namespace, in the mesh's root namespace, in another team's
namespace, or cluster-scoped) is either named in the expectations, with a template its fields must fit,
or fits one of the documented harmless additions; a governed namespace the expectations do not describe
is one finding. Templates are data; this module only matches them:

- a map is closed: a key the template lacks is a field gap; a key whose template value is set (not `~`,
  an empty list, a matcher below, or a map with `$optional: true`) must be present, since a missing constraint widens
  (an ALLOW rule without `from`);
- `~` is anything, below it too; `$others: ~` in a map opens it to keys it does not name;
- a list's template items are alternatives: each item must fit one (an item whose `name` one of them
  names must fit that one); fewer items than the template are fine, an empty template list allows none,
  and a list starting with "$optional" may be absent;
- a scalar is compared exactly; `{$in: [...]}`, `{$range: {min, max}}` and `{$words: [...]}` (each word of a
  comma or space separated value one of these) compare values the expectations name more loosely;
  `{$each: template}` holds every value of a map whose keys are data (port numbers); `{$ref: file.key}`
  takes the value from another expectations file, so that it is written once;
- labels and annotations are open (an owner label is harmless) except keys matching `governed_keys`
  (injection, revision, mesh capture, dry-run, Pod Security, Vault, scraping), which must be named with
  their value.

A gap is ("object", ...) for an unexpected object, ("field", ...) for an unexpected field or governed key
and ("value", ...) for a value other than the named one; each of the three rules reports one sort.
"""

from __future__ import annotations

import fnmatch
import re
import weakref
from dataclasses import dataclass
from functools import cache
from typing import Any

from conformance import fixtures
from conformance.static.manifests import Bundle, K8sObject

EXPECTATIONS_FILE = "fixtures/expectations/closed_world.yaml"
_MATCHERS = ("$in", "$range", "$words", "$each")
# First item of a list template that may be absent (a list is otherwise required, like `from` in a rule).
OPTIONAL = "$optional"
_WORD = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class Finding:
    sort: str  # "object", "field" or "value"
    text: str


def _resolve(node: Any) -> Any:
    """The template with every {$ref: file.key.key} replaced by that expectation's value."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            file, *keys = str(node["$ref"]).split(".")
            value = fixtures.expectations(file)
            for key in keys:
                value = value[key]
            return value
        return {key: _resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item) for item in node]
    return node


@cache
def expectations() -> dict[str, Any]:
    return _resolve(fixtures.expectations("closed_world"))


def governed_key(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in expectations()["governed_keys"])


# --- matching one value against one template -------------------------------------------------------------------

def _key_path(path: str, key: Any) -> str:
    key = str(key)
    if "." in key or "/" in key:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _equal(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return value == expected or (isinstance(value, int | float | str) and str(value) == str(expected))


def _matcher(value: Any, template: dict[str, Any], path: str) -> list[Finding]:
    if "$in" in template:
        allowed = template["$in"]
        if not any(_equal(value, a) for a in allowed):
            return [Finding("value", f"{path} is {_shown(value)}, not one of the values the expectations name "
                                 f"({', '.join(map(str, allowed))})")]
        return []
    if "$range" in template:
        low, high = template["$range"]["min"], template["$range"]["max"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            return [Finding("value", f"{path} is {_shown(value)}, outside the {low}-{high} the expectations allow")]
        return []
    if "$words" in template:
        allowed = set(template["$words"])
        words = [w for w in _WORD.split(str(value)) if w]
        extra = [w for w in words if w not in allowed]
        if extra:
            return [Finding("value", f"{path} has {', '.join(extra)}, which the expectations do not name (they allow "
                                 f"{', '.join(template['$words'])})")]
        return []
    # $each: a map whose keys are data (ports, names), every value held to one template.
    if not isinstance(value, dict):
        return [Finding("value", f"{path} is {_shown(value)}, not a map")]
    return [g for key, item in value.items() for g in match(item, template["$each"], f"{path}[{key}]")]


def _metadata_map(value: Any, template: Any, path: str) -> list[Finding]:
    """Labels or annotations: free keys are harmless, governed ones must be named with their value."""
    named = template if isinstance(template, dict) else {}
    gaps = []
    for key, item in (value or {}).items() if isinstance(value, dict) else []:
        key = str(key)
        if key in named:
            if named[key] is not None:
                gaps += match(item, named[key], f"{path}[{key}]")
        elif governed_key(key):
            gaps.append(Finding("field", f"{path}[{key}] ({_shown(item)}) is a governed key the expectations do not "
                                     "name for this object"))
    return gaps


def _dict(value: Any, template: dict[str, Any], path: str) -> list[Finding]:
    if not isinstance(value, dict):
        return [Finding("value", f"{path or 'the object'} is {_shown(value)}, where the expectations name a map")]
    gaps: list[Finding] = []
    others = "$others" in template
    metadata = path == "metadata" or path.endswith(".metadata")
    for key, item in value.items():
        where = _key_path(path, key)
        if metadata and key in ("labels", "annotations"):
            gaps += _metadata_map(item, template.get(key), where)
        elif key in template:
            gaps += match(item, template[key], where)
        elif not others:
            gaps.append(Finding("field", f"{where} is a field the expectations do not name for this object"))
    for key, expected in template.items():
        # A named value is required (a missing constraint widens); a looser matcher ($in, $range...)
        # compares a value only where one is set, for fields whose default is as strict.
        optional = expected is None or (isinstance(expected, list) and expected[:1] in ([], [OPTIONAL])) or (
            isinstance(expected, dict) and (
            expected.get("$optional") or any(m in expected for m in _MATCHERS)))
        optional = optional or (metadata and key in ("labels", "annotations"))
        if key not in value and not optional and not str(key).startswith("$"):
            gaps.append(Finding("value", f"{_key_path(path, key)} is not set, but the expectations name its value"))
    return gaps


def _item_path(path: str, index: int, item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f"{path}[{item['name']}]"
    return f"{path}[{index}]"


def _list(value: Any, template: list[Any], path: str) -> list[Finding]:
    if not isinstance(value, list):
        return [Finding("value", f"{path} is {_shown(value)}, where the expectations name a list")]
    template = [t for t in template if t != OPTIONAL]
    gaps: list[Finding] = []
    for index, item in enumerate(value):
        where = _item_path(path, index, item)
        if not template:
            gaps.append(Finding("field", f"{where} is an item where the expectations allow none"))
            continue
        name = item.get("name") if isinstance(item, dict) else None
        named = [t for t in template if isinstance(t, dict) and name is not None and t.get("name") == name]
        candidates = named or [t for t in template if not (isinstance(t, dict) and isinstance(t.get("name"), str))]
        if not candidates:
            gaps.append(Finding("field", f"{where} is not one of the items the expectations name"))
            continue
        tried = [match(item, t, where) for t in candidates]
        if all(tried):
            # No alternative fits: say what the nearest one finds wrong.
            gaps += min(tried, key=len)
    return gaps


def match(value: Any, template: Any, path: str = "") -> list[Finding]:
    """The gaps of `value` (found at `path`) against `template`."""
    if template is None:
        return []
    if isinstance(template, dict):
        if any(key in template for key in _MATCHERS):
            return _matcher(value, template, path)
        return _dict(value, template, path)
    if isinstance(template, list):
        return _list(value, template, path)
    if not _equal(value, template):
        return [Finding("value", f"{path} is {_shown(value)}, not the {_shown(template)} the expectations name")]
    return []


# --- which objects are judged, against what ------------------------------------------------------------------

def _object_template(template: Any) -> dict[str, Any]:
    """A named object's template as a whole-document template: apiVersion, kind and metadata's identity free."""
    spec = dict(template) if isinstance(template, dict) else {"$others": None}
    metadata = spec.pop("metadata", None) or {}
    return {"apiVersion": None, "kind": None, **spec,
            "metadata": {"$others": None, "labels": metadata.get("labels"),
                         "annotations": metadata.get("annotations")}}


def fits(obj: K8sObject, template: Any) -> list[Finding]:
    return match(obj.doc, _object_template(template))


def described_namespaces() -> set[str]:
    return set(expectations()["namespaces"])


def governed(bundle: Bundle) -> set[str]:
    return set(bundle.namespaces)


def undescribed(bundle: Bundle) -> list[str]:
    """Namespaces the bundle governs that the expectations do not describe."""
    return sorted(governed(bundle) - described_namespaces())


def judged(bundle: Bundle) -> list[tuple[K8sObject, str | None]]:
    """The objects the closed world holds, each with the namespace whose expectations apply (None: the
    cluster-scoped ones). That is every object the bundle ships: one it puts into a namespace it does not
    govern (a RoleBinding in kube-system, a policy in the mesh's root namespace, a route another namespace
    exports) reaches past its own namespaces, so only a harmless addition may stand there unnamed. Objects
    of governed namespaces the expectations do not describe are left to one gap per namespace."""
    ruled = governed(bundle)
    described = described_namespaces()
    out = []
    for obj in bundle.objects:
        namespace = obj.namespace
        if obj.kind == "Namespace" and obj.name in ruled:
            namespace = obj.name  # the namespace object belongs to its own namespace's world
        if namespace is None or namespace not in ruled or namespace in described:
            out.append((obj, namespace))
    return out


def named_template(obj: K8sObject, namespace: str | None) -> tuple[bool, Any]:
    """(whether the expectations name this object, its template)."""
    spec = expectations()
    world = spec["namespaces"].get(namespace, {}) if namespace is not None else spec.get("cluster") or {}
    key = f"{obj.kind}/{obj.name}"
    return key in (world or {}), (world or {}).get(key)


def harmless_entries() -> list[dict[str, Any]]:
    return list(expectations()["harmless"])


def _harmless_fit(obj: K8sObject, namespace: str | None, ruled: set[str]) -> tuple[bool, str]:
    """(whether `obj` is a harmless addition, else why the nearest one of its kind does not fit it)."""
    nearest: tuple[dict[str, Any], list[Finding]] | None = None
    for entry in harmless_entries():
        if entry["kind"] != obj.kind:
            continue
        if entry.get("where") == "governed" and namespace not in ruled:
            continue
        gaps = fits(obj, entry.get("template"))
        if not gaps:
            return True, ""
        if nearest is None or len(gaps) < len(nearest[1]):
            nearest = (entry, gaps)
    return False, f" (nearest, {nearest[0]['id']}: {nearest[1][0].text})" if nearest else ""


# The three CLOSED rules each ask for the findings of the same bundle: they are worked out once. Weak
# keys: a mutated copy is a new bundle, and a bundle that is gone takes its findings with it.
_FOUND: weakref.WeakKeyDictionary[Bundle, list[Finding]] = weakref.WeakKeyDictionary()


def findings(bundle: Bundle) -> list[Finding]:
    """Every closed-world finding of the bundle."""
    found = _FOUND.get(bundle)
    if found is None:
        found = _FOUND[bundle] = _findings(bundle)
    return found


def _findings(bundle: Bundle) -> list[Finding]:
    ruled = governed(bundle)
    found = [Finding("object", f"Namespace {ns}: {EXPECTATIONS_FILE} does not describe this namespace, so what it "
                               "holds cannot be told from what it should hold") for ns in undescribed(bundle)]
    for obj, namespace in judged(bundle):
        is_named, template = named_template(obj, namespace)
        if is_named:
            found += [Finding(g.sort, f"{obj.ref}: {g.text}") for g in fits(obj, template)]
            continue
        harmless, why = _harmless_fit(obj, namespace, ruled)
        if harmless:
            continue
        where = f"namespace {namespace}" if namespace else "the cluster scope"
        found.append(Finding("object", f"{obj.ref}: not an object {EXPECTATIONS_FILE} names for {where}, nor one of "
                                       f"its harmless additions{why}"))
    return found
