"""SCHEMA: what the chosen Kubernetes minor serves: no removed API, no field of another minor only,
no field it documents as deprecated."""

from __future__ import annotations

from conformance.static import lifecycle
from conformance.static.manifests import Bundle
from conformance.static.rules import rule


@rule("SCHEMA-01")
def apis_current(bundle: Bundle) -> list[str]:
    return lifecycle.gaps(bundle.objects)
