"""After a fault's undo, a cheap look that the cluster is back: what is left over is named, never assumed.

An undo that raised nothing is not proof: a restart whose rollout did not finish, a push wait that timed out
or a step whose object is still there all leave the next fault, and the baseline after the catalogue, on a
changed cluster. Three looks, each a few seconds:
- the workload: the Deployment rolled out with the HPA's minimum of Ready pods and none starting;
- the overlay: a server-side dry run of the baseline's rendering, with the field manager that applied it,
  changes nothing (`kubectl diff` exits 0), so every object the fault's overlay touched is as the baseline's;
- the cluster steps: what a step created is gone, what it deleted is back, what it scaled is back to Ready,
  what it patched no longer holds the patch.
"""

from __future__ import annotations

import json
import re
from typing import Any

from conformance.live.faults.catalogue import Fault

# kubectl diff names each changed object by the file it wrote: .../<group>.<version>.<Kind>.<namespace>.<name>
_DIFF_FILE = re.compile(r"^diff -u -N \S*/LIVE-\d+/(\S+) ", re.MULTILINE)


def _overlay(env, baseline: str) -> list[str]:
    result = env.kube.run("diff", "--server-side", "--force-conflicts", "--field-manager=cortex-conformance",
                          "-f", "-", input=baseline, check=False, timeout=120)
    if result.returncode == 0:
        return []
    if result.returncode == 1:
        changed = sorted(set(_DIFF_FILE.findall(result.stdout))) or ["(kubectl diff named no object)"]
        return [f"the overlay's objects differ from the baseline's: {', '.join(changed)}"]
    last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
    return [f"could not compare the overlay with the baseline (kubectl diff exit {result.returncode}: {last[0]})"]


def _get(env, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    result = env.kube.run("get", kind, name, *(["-n", namespace] if namespace else []), "-o", "json",
                          check=False, timeout=60)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise_text = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise LookupError(f"cannot read {kind} {name}: {raise_text}")
    return json.loads(result.stdout)


def _holds(patch: Any, obj: Any) -> bool:
    """Whether every value a merge patch sets is present in the object."""
    if isinstance(patch, dict):
        return isinstance(obj, dict) and all(k in obj and _holds(v, obj[k]) for k, v in patch.items())
    return patch == obj


def _step(env, step: dict[str, Any]) -> list[str]:
    verb, spec = next(iter(step.items()))
    if verb == "apply":
        meta = spec["metadata"]
        if _get(env, spec["kind"], meta["name"], meta.get("namespace")) is not None:
            return [f"{spec['kind']} {meta['name']} the fault created is still there"]
    elif verb == "delete":
        if _get(env, spec["kind"], spec["name"], spec.get("namespace")) is None:
            return [f"{spec['kind']} {spec['name']} the fault deleted was not restored"]
    elif verb == "scale":
        obj = _get(env, spec["kind"], spec["name"], spec.get("namespace")) or {}
        want, ready = (obj.get("spec") or {}).get("replicas"), (obj.get("status") or {}).get("readyReplicas", 0)
        if not obj or want == spec["replicas"] or ready != want:
            return [f"{spec['kind']} {spec['name']} is not back to its replicas (wants {want}, {ready} Ready)"]
    elif verb == "patch" and isinstance(spec.get("patch"), dict):
        obj = _get(env, spec["kind"], spec["name"], spec.get("namespace"))
        if obj is not None and _holds(spec["patch"], obj):
            return [f"{spec['kind']} {spec['name']} still holds the fault's patch"]
    # A named action (call) is undone by its own code; the overlay and workload looks, and the baseline after
    # the catalogue, see what it leaves.
    return []


def leftovers(env, fault: Fault, baseline: str) -> list[str]:
    """What the fault left behind after its undo; empty when the cluster is back to the baseline."""
    found: list[str] = []
    env.workload.wait_rollout(timeout=60)
    if env.workload.rollout_error:
        found.append(f"the workload did not roll out again: {env.workload.rollout_error}")
    found += _overlay(env, baseline)
    for step in fault.cluster:
        try:
            found += _step(env, step)
        except LookupError as exc:
            found.append(str(exc))
    return found
