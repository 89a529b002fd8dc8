"""Schemas for custom resources that neither Kubernetes nor Istio pins: their CustomResourceDefinitions.

A bundle that ships a CRD beside its custom resources is checked against that CRD, as the API server
would check them once the CRD is applied. CRDs installed separately (an operator's chart) are given
with `--crd FILE|DIR`; a CRD in the bundle takes precedence over one given that way, since it is the
one applied with the objects. Either way the schema is made strict and its CEL rules evaluated, as
for the Istio kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from conformance.errors import InputError
from conformance.static.manifests import Bundle, parse, read_text
from conformance.static.schema import Compiled, schemas_of_crd

SUFFIXES = (".yaml", ".yml", ".json")

# CRDs given with --crd for this process ("group/version/Kind" -> strict schema).
GIVEN: dict[str, dict[str, Any]] = {}


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if path.is_file():
        return [path]
    raise InputError(f"--crd {path} does not exist")


def load(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """The CRD schemas in these files and directories; a path without any CRD is one error line."""
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        before = len(found)
        for file in _files(path):
            for obj in parse(read_text(file, "CRD file"), str(file)):
                found.update(schemas_of_crd(obj.doc))
        if len(found) == before:
            raise InputError(f"--crd {path}: no CustomResourceDefinition with a schema in it")
    return found


def use(paths: Iterable[Path]) -> int:
    """Take the CRDs of `--crd` for the rest of this process; how many kinds and versions they define."""
    schemas = load(paths)
    GIVEN.clear()
    GIVEN.update(schemas)
    return len(schemas)


class CustomSchemas:
    """The custom resource schemas one bundle is checked against, compiled when first needed."""

    def __init__(self, schemas: dict[str, dict[str, Any]], compile_schema: Callable[[dict[str, Any]], Compiled]):
        self._schemas = schemas
        self._compile = compile_schema
        self._compiled: dict[str, Compiled | Unusable] = {}

    def get(self, api_version: str, kind: str) -> Compiled | Unusable | None:
        key = f"{api_version}/{kind}"
        if key not in self._schemas:
            return None
        if key not in self._compiled:
            try:
                self._compiled[key] = self._compile(self._schemas[key])
            except Exception as exc:  # noqa: BLE001 - a third party's schema may be broken in any way
                self._compiled[key] = Unusable(key, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return self._compiled[key]


class Unusable:
    """A CRD whose schema cannot be compiled: its objects are unchecked, which is a gap of each."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem

    def check(self, obj) -> tuple[list[str], list]:
        return [f"{obj.ref}: the schema of {self.key} in its CustomResourceDefinition cannot be used "
                f"({self.problem}), so the object is unchecked"], []


def for_bundle(bundle: Bundle, compile_schema: Callable[[dict[str, Any]], Compiled]) -> CustomSchemas:
    in_bundle = {key: schema for crd in bundle.of_kind("CustomResourceDefinition")
                 for key, schema in schemas_of_crd(crd.doc)}
    return CustomSchemas({**GIVEN, **in_bundle}, compile_schema)
