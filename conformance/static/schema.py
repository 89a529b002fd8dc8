"""Strict, offline schema validation of every rendered object.

Kubernetes kinds are checked against the strict JSON schemas that the kubernetes-validate wheel
bundles for the pinned Kubernetes minor. Istio kinds are checked against the CRD schemas of the
pinned istio.io/api module (fetched once by conformance.downloads), made strict (unknown fields are
errors, as kubeconform's -strict does for built-in kinds) and cached outside the repo. CEL rules
(x-kubernetes-validations) are not evaluated; the semantic checks that matter to the controls live
in mesh.py and the rules.
"""

from __future__ import annotations

import json
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from conformance import fixtures, paths
from conformance.errors import PreflightError
from conformance.static.manifests import K8sObject

DEFS_URI = "/api/_definitions.json"
OBJECT_META = f"{DEFS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CRD_FILE = "kubernetes/customresourcedefinitions.gen.yaml"
ISTIO_GROUP_SUFFIX = ".istio.io"


SCHEMA_VERSION: str | None = None  # `--kubernetes 1.33` validates against v1.33.0 instead of the pin


def k8s_schema_dir() -> Path:
    import kubernetes_validate

    version = SCHEMA_VERSION or fixtures.versions()["kubernetes"]["schema"]
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"{version}-local-strict"
    if not path.is_dir():
        raise PreflightError(f"kubernetes-validate has no strict schemas for Kubernetes {version}")
    return path


def istio_api_pin() -> tuple[str, str, str]:
    istio = fixtures.versions()["istio"]
    module, _, version = istio["api"].partition("@")
    return module, version, istio["api_zip_sha256"]


def istio_cache_file() -> Path:
    module, version, _ = istio_api_pin()
    return paths.cache_root() / "schemas" / f"{module.replace('/', '_')}@{version}" / "crds.json"


def crd_schemas(crd_yaml: str):
    """Yield ("group/version/Kind", strict JSON schema) for every served version of every CRD."""
    for crd in yaml.safe_load_all(crd_yaml):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        kind = spec["names"]["kind"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            api_version = f"{spec['group']}/{version['name']}"
            root = strict(version["schema"]["openAPIV3Schema"])
            root["properties"].update({
                "apiVersion": {"type": "string", "enum": [api_version]},
                "kind": {"type": "string", "enum": [kind]},
                "metadata": {"$ref": OBJECT_META},
            })
            root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
            root["additionalProperties"] = False
            yield f"{api_version}/{kind}", root


def strict(node: Any) -> Any:
    """An OpenAPI v3 CRD schema as JSON Schema in which unknown fields are errors."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "x-kubernetes-validations":
            continue
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


def _k8s_file_name(kind: str, api_version: str) -> str:
    group, _, version = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


def _path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


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
    def _validator(self, api_version: str, kind: str):
        if api_version.partition("/")[0].endswith(ISTIO_GROUP_SUFFIX):
            schema = self._istio.get(f"{api_version}/{kind}")
        else:
            path = self._k8s_dir / _k8s_file_name(kind, api_version)
            schema = json.loads(path.read_text()) if path.exists() else None
        if schema is None:
            return None
        return jsonschema_rs.validator_for(schema, registry=self._registry)

    def validate(self, obj: K8sObject) -> list[str]:
        """Schema gaps of one object, each naming the object and the field."""
        if not obj.api_version:
            return [f"{obj.ref}: apiVersion is missing"]
        validator = self._validator(obj.api_version, obj.kind)
        if validator is None:
            return [f"{obj.ref}: no schema for {obj.api_version} {obj.kind} in the pinned Kubernetes "
                    "and Istio versions (misspelled kind or apiVersion?)"]
        return [f"{obj.ref}: {_path(list(error.instance_path))}: {error.message}"
                for error in validator.iter_errors(obj.doc)]

    def is_istio(self, obj: K8sObject) -> bool:
        return obj.group.endswith(ISTIO_GROUP_SUFFIX)
