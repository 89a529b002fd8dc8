"""SCHEMA: every object validates strictly against the pinned Kubernetes and Istio schemas."""

from __future__ import annotations

from functools import cache

from conformance.static import crds, names
from conformance.static.manifests import Bundle, K8sObject
from conformance.static.rules import rule
from conformance.static.schema import SchemaValidator, Unevaluated, unevaluated_gaps


@cache
def validator() -> SchemaValidator:
    return SchemaValidator()


def _gaps(bundle: Bundle, objects: list[K8sObject]) -> list[str]:
    v = validator()
    custom = crds.for_bundle(bundle, v.compile)
    gaps: list[str] = []
    unevaluated: list[Unevaluated] = []
    for obj in objects:
        found, skipped = v.check(obj, custom)
        gaps += found
        unevaluated += skipped
    # A CEL rule the runtime cannot evaluate is said once per rule, not once per object.
    return gaps + unevaluated_gaps(unevaluated)


# Both judge every object the input holds, so neither has "nothing to check": an input without
# Istio objects (base/) has none to get wrong, and MTLS, JWT and GW fail an overlay that lacks them.
@rule("SCHEMA-01")
def kubernetes_schema(bundle: Bundle) -> list[str]:
    """Kubernetes kinds and custom resources of other groups (checked against their CRDs)."""
    v = validator()
    return _gaps(bundle, [obj for obj in bundle.objects if not v.is_istio(obj)])


@rule("SCHEMA-02")
def istio_schema(bundle: Bundle) -> list[str]:
    v = validator()
    return _gaps(bundle, [obj for obj in bundle.objects if v.is_istio(obj)])


@rule("SCHEMA-01")
def object_names(bundle: Bundle) -> list[str]:
    """Names, namespaces, label and annotation keys the API server accepts (the schemas only say "string")."""
    gaps = []
    for obj in bundle.objects:
        gaps += [f"{obj.ref}: {problem}" for problem in names.metadata_problems(obj.kind, obj.metadata,
                                                                               obj.namespace is not None)]
    for pod in bundle.pods:
        if pod.owner.kind == "Pod":
            continue  # its metadata is the object's own, judged above
        # A pod template's labels and annotations become the pods' metadata, held to the same rules.
        gaps += [f"{pod.owner.ref} pod template: {problem}" for problem in names.metadata_problems(
            "Pod", {k: v for k, v in pod.metadata.items() if k in ("labels", "annotations")}, False)]
    return gaps
