"""Strict, offline schema validation of every rendered object.

Kubernetes kinds are checked against the strict JSON schemas that the kubernetes-validate wheel
bundles for the pinned Kubernetes minor. Istio kinds are checked against the CRD schemas of the
pinned istio.io/api module (fetched once by conformance.downloads), made strict (unknown fields are
errors, as kubeconform's -strict does for built-in kinds) and cached outside the repo. Other custom
resources are checked against their CustomResourceDefinition, from the same bundle or from
`--crd` (crds.py). The CRDs' CEL rules (x-kubernetes-validations) are evaluated as the API server
would at create (cel_rules.py); a rule that cannot be evaluated here is a gap, never a pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from conformance import fixtures, paths
from conformance.errors import PreflightError
from conformance.static.cel_rules import RuleTree
from conformance.static.manifests import K8sObject

DEFS_URI = "/api/_definitions.json"
OBJECT_META = f"{DEFS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CRD_FILE = "kubernetes/customresourcedefinitions.gen.yaml"
ISTIO_GROUP_SUFFIX = ".istio.io"


def k8s_schema_dir() -> Path:
    import kubernetes_validate

    version = fixtures.pins()["kubernetes"]["schema"]
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"{version}-local-strict"
    if not path.is_dir():
        raise PreflightError(f"kubernetes-validate has no strict schemas for Kubernetes {version}")
    return path


def istio_api_pin() -> tuple[str, str, str]:
    istio = fixtures.pins()["istio"]
    module, _, version = istio["api"].partition("@")
    return module, version, istio["api_zip_sha256"]


# The cached schemas' format: 2 keeps the CEL rules (x-kubernetes-validations), which 1 dropped.
CACHE_FORMAT = 2


def istio_cache_file() -> Path:
    module, version, _ = istio_api_pin()
    return paths.cache_root() / "schemas" / f"{module.replace('/', '_')}@{version}" / f"crds-v{CACHE_FORMAT}.json"


def crd_schemas(crd_yaml: str):
    """Yield ("group/version/Kind", strict JSON schema) for every served version of every CRD."""
    for crd in yaml.safe_load_all(crd_yaml):
        yield from schemas_of_crd(crd)


def schemas_of_crd(crd: Any):
    """Yield ("group/version/Kind", strict JSON schema) for every served version of one CRD document."""
    if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
        return
    spec = crd.get("spec")
    names = spec.get("names") if isinstance(spec, dict) else None
    kind = names.get("kind") if isinstance(names, dict) else None
    versions = spec.get("versions") if isinstance(spec, dict) else None
    # A malformed CRD yields nothing here; SCHEMA-01 reports it against the CRD's own schema.
    for version in versions if isinstance(versions, list) else []:
        holder = version.get("schema") if isinstance(version, dict) else None
        schema = holder.get("openAPIV3Schema") if isinstance(holder, dict) else None
        if not kind or not isinstance(schema, dict) or not version.get("served", True):
            continue
        api_version = f"{spec.get('group')}/{version.get('name')}"
        root = strict(schema)
        root.setdefault("properties", {}).update({
            "apiVersion": {"type": "string", "enum": [api_version]},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": {"$ref": OBJECT_META},
        })
        root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            root["additionalProperties"] = False
        yield f"{api_version}/{kind}", root


def strict(node: Any) -> Any:
    """An OpenAPI v3 CRD schema as JSON Schema in which unknown fields are errors."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    # x-kubernetes-validations stays: JSON Schema ignores the keyword, and cel_rules evaluates it.
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "not", "anyOf", "oneOf", "allOf"}:
            out[key] = strict(value)
        else:
            out[key] = value
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    return out


def is_builtin_group(group: str) -> bool:
    """Kubernetes' own API groups: the core group, dotless ones (apps, batch) and *.k8s.io."""
    return "." not in group or group.endswith(".k8s.io")


def _k8s_file_name(kind: str, api_version: str) -> str:
    group, _, version = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


def _path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


@dataclass(frozen=True)
class Unevaluated:
    """A CEL rule that applies to an object but that this runtime cannot evaluate."""

    ref: str
    where: str
    rule: str
    problem: str


def unevaluated_gaps(items: list[Unevaluated]) -> list[str]:
    """One gap per CEL rule that could not be evaluated, however many objects it applied to: such an
    object is unchecked against the rule, which must not read as a pass."""
    by_rule: dict[tuple[str, str], list[Unevaluated]] = {}
    for item in items:
        by_rule.setdefault((item.rule, item.problem), []).append(item)
    gaps = []
    for (rule, problem), hits in by_rule.items():
        more = f" and {len(hits) - 1:,} more object(s)" if len(hits) > 1 else ""
        gaps.append(f"{hits[0].ref}: {hits[0].where}: CEL rule `{rule}` was not evaluated (it {problem}), so "
                    f"this object{more} went unchecked against it")
    return gaps


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def as_json_keys(node: Any) -> Any:
    """A copy of a parsed YAML value with every map key as JSON (and so the API server) spells it."""
    if isinstance(node, dict):
        return {_json_key(k): as_json_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [as_json_keys(item) for item in node]
    return node


class Compiled:
    """One kind's schema, compiled once: the JSON Schema validator and the tree of its CEL rules."""

    def __init__(self, schema: dict[str, Any], registry: jsonschema_rs.Registry):
        self.validator = jsonschema_rs.validator_for(schema, registry=registry)
        self.rules = RuleTree.of(schema)

    def check(self, obj: K8sObject) -> tuple[list[str], list[Unevaluated]]:
        doc = obj.doc
        try:
            errors = list(self.validator.iter_errors(doc))
        except ValueError:
            # The validator takes only string map keys, but YAML has others: Istio's documentation
            # writes `portLevelMtls: {8080: ...}`. The API server receives JSON, where every key is a
            # string, so the object is judged as it will arrive. Only on this path: it costs a copy.
            doc = as_json_keys(doc)
            errors = list(self.validator.iter_errors(doc))
        gaps = [f"{obj.ref}: {_path(list(error.instance_path))}: {error.message}" for error in errors]
        if self.rules is None:
            return gaps, []
        outcome = self.rules.check(doc)
        gaps += [f"{obj.ref}: {_path(where)}: {message}" for where, message in outcome.violations]
        return gaps, [Unevaluated(obj.ref, _path(where), rule, problem)
                      for where, rule, problem in outcome.not_evaluated]


class SchemaValidator:
    """Validates objects one at a time; compiled validators are cached per kind."""

    @cached_property
    def _k8s_dir(self) -> Path:
        return k8s_schema_dir()

    @cached_property
    def _registry(self) -> jsonschema_rs.Registry:
        definitions = json.loads((self._k8s_dir / "_definitions.json").read_text())
        return jsonschema_rs.Registry([(DEFS_URI, definitions)])

    @cached_property
    def _istio(self) -> dict[str, Any]:
        path = istio_cache_file()
        if not path.exists():
            module, version, _ = istio_api_pin()
            raise PreflightError(
                f"Istio CRD schemas for {module}@{version} are not installed: run "
                "`python -m conformance.downloads schemas` (nox -s static does it for you)")
        return json.loads(path.read_text())

    @cache  # noqa: B019 - one validator per process; the cache is meant to live as long as it
    def _validator(self, api_version: str, kind: str) -> Compiled | None:
        group = api_version.rpartition("/")[0]
        schema = None
        if group.endswith(ISTIO_GROUP_SUFFIX):
            schema = self._istio.get(f"{api_version}/{kind}")
        elif is_builtin_group(group):
            path = self._k8s_dir / _k8s_file_name(kind, api_version)
            schema = json.loads(path.read_text()) if path.exists() else None
        return None if schema is None else Compiled(schema, self._registry)

    def compile(self, schema: dict[str, Any]) -> Compiled:
        """A custom resource's schema (from a CRD), compiled against the same Kubernetes definitions."""
        return Compiled(schema, self._registry)

    def check(self, obj: K8sObject, custom: Any = None) -> tuple[list[str], list[Unevaluated]]:
        """Schema gaps of one object, each naming the object and the field, and the CEL rules that
        applied to it but could not be evaluated.

        `custom` answers `get(api_version, kind)` with the Compiled schema of a CustomResourceDefinition
        that the bundle or --crd supplies (crds.CustomSchemas), for kinds neither Kubernetes nor Istio pins.
        """
        if not obj.api_version:
            return [f"{obj.ref}: apiVersion is missing"], []
        compiled = self._validator(obj.api_version, obj.kind)
        if compiled is None and custom is not None:
            compiled = custom.get(obj.api_version, obj.kind)
        if compiled is not None:
            return compiled.check(obj)
        group = obj.group
        if is_builtin_group(group) or group.endswith(ISTIO_GROUP_SUFFIX):
            return [f"{obj.ref}: no schema for {obj.api_version} {obj.kind} in the pinned Kubernetes "
                    "and Istio versions (misspelled kind or apiVersion?)"], []
        return [f"{obj.ref}: no schema for {obj.api_version} {obj.kind}: its CustomResourceDefinition is neither "
                "in the manifests nor given with --crd FILE|DIR (or the kind or apiVersion is misspelled)"], []

    def validate(self, obj: K8sObject, custom: Any = None) -> list[str]:
        gaps, unevaluated = self.check(obj, custom)
        return gaps + unevaluated_gaps(unevaluated)

    def is_istio(self, obj: K8sObject) -> bool:
        return obj.group.endswith(ISTIO_GROUP_SUFFIX)
