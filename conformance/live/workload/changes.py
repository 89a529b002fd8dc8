"""What changed in the conformance overlay between two renderings, and whether a kept workload takes it
in place. Pure: the workload phase decides on it whether a kept workload is reused, and the fault
catalogue whether a fault's overlay waits for an istiod push.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from conformance.live.platform import push

# What a running workload takes in place: its pods roll out again when their template changes, istiod
# pushes Istio config, and the API server and the CNI act on the rest at once. What pods read only when
# they start does not reach running ones: a namespace's labels (injection, Pod Security), a
# ServiceAccount (token mounting), a ProxyConfig (the proxy's bootstrap), ConfigMaps and Secrets. A
# change there starts over, so that it is tested on new pods.
IN_PLACE = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
            *(push.ISTIO_KINDS - {"ProxyConfig"})}


def in_place_changes(record: dict[str, Any] | None, digests: dict[str, str],
                     objects: dict[str, str]) -> set[str] | None:
    """The overlay's objects (kind/namespace/name) that changed since the run that left `record`, when the
    kept workload can take them in place (an empty set: nothing changed); None when it must start over:
    no record, other client pods or platform, a record without per-object digests, or a change of a kind
    outside IN_PLACE."""
    if record is None or any(record.get(k) != digests[k] for k in ("clients", "platform")):
        return None
    if record.get("overlay") == digests["overlay"]:
        return set()
    before = record.get("objects")
    if not isinstance(before, dict):
        return None
    changed = changed_objects(before, objects)
    return changed if all(key.split("/", 1)[0] in IN_PLACE for key in changed) else None


def object_digests(rendered: str, skip: set[str] = frozenset()) -> dict[str, str]:
    """kind/namespace/name -> digest of each object of a rendered multi-document YAML, but those in `skip`."""
    out = {}
    for doc in yaml.safe_load_all(rendered):
        if not doc or not doc.get("kind"):
            continue
        meta = doc.get("metadata") or {}
        key = f"{doc['kind']}/{meta.get('namespace', '')}/{meta.get('name')}"
        if key not in skip:
            out[key] = digest(json.dumps(doc, sort_keys=True, default=str))
    return out


def changed_objects(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """The keys of object_digests added, removed or changed between two renderings."""
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
