"""SCHEMA: every object validates strictly against the pinned Kubernetes and Istio schemas."""

from __future__ import annotations

from functools import cache

from conformance.static.manifests import Bundle
from conformance.static.rules import rule
from conformance.static.schema import SchemaValidator


@cache
def validator() -> SchemaValidator:
    return SchemaValidator()


@rule("SCHEMA-01")
def kubernetes_schema(bundle: Bundle) -> list[str]:
    v = validator()
    return [gap for obj in bundle.objects if not v.is_istio(obj) for gap in v.validate(obj)]


@rule("SCHEMA-02")
def istio_schema(bundle: Bundle) -> list[str]:
    v = validator()
    return [gap for obj in bundle.objects if v.is_istio(obj) for gap in v.validate(obj)]
