"""The repository's manifest conventions, checked rather than written down (`nox -s lint`).

- every overlay builds with the pinned kubectl kustomize, without deprecation warnings;
- kustomizations use no deprecated fields and list every resource file explicitly;
- overlays change base objects only through patches, never by copying them;
- every manifest document starts apiVersion, kind, metadata, in that order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from conformance.errors import ConformanceError
from conformance.paths import REPO
from conformance.static.manifests import kubectl

DEPRECATED_FIELDS = {
    "commonLabels": "use labels: with includeSelectors",
    "patchesStrategicMerge": "use patches: with target:",
    "patchesJson6902": "use patches: with target:",
    "bases": "list them under resources:",
    "vars": "use replacements:",
    "imageTags": "use images:",
}
LEADING_KEYS = ["apiVersion", "kind", "metadata"]


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def kustomization_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("**/kustomization.yaml") if ".nox" not in p.parts)


def _documents(path: Path) -> list[dict]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ConformanceError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None


def check_build(directory: Path) -> list[str]:
    proc = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = next((line for line in proc.stderr.splitlines() if line.strip()), "no output")
        return [f"{_shown(directory)}: does not build: {first}"]
    return [f"{_shown(directory)}: kustomize warns: {line.strip()}" for line in proc.stderr.splitlines()
            if "deprecated" in line.lower()]


def check_kustomization(directory: Path) -> list[str]:
    gaps = []
    path = directory / "kustomization.yaml"
    doc = (_documents(path) or [{}])[0]
    for field, advice in DEPRECATED_FIELDS.items():
        if field in doc:
            gaps.append(f"{_shown(path)}: {field} is deprecated; {advice}")
    listed = {(directory / r).resolve() for r in doc.get("resources") or []}
    patched = {(directory / p["path"]).resolve() for p in doc.get("patches") or [] if "path" in p}
    nested = {k.parent for k in directory.rglob("kustomization.yaml")} - {directory}
    for candidate in sorted(directory.rglob("*.yaml")):
        if candidate.name == "kustomization.yaml" or any(n in candidate.parents for n in nested):
            continue
        if candidate.resolve() not in listed | patched:
            gaps.append(f"{_shown(candidate)}: not listed in the kustomization, so it is silently left out")
    for patch in doc.get("patches") or []:
        if "target" not in patch:
            gaps.append(f"{_shown(path)}: patch {patch.get('path', '(inline)')} has no target:")
    return gaps


def _objects_of(directory: Path) -> dict[tuple[str, str], Path]:
    doc = (_documents(directory / "kustomization.yaml") or [{}])[0]
    found: dict[tuple[str, str], Path] = {}
    for resource in doc.get("resources") or []:
        path = (directory / resource).resolve()
        if path.is_file():
            for obj in _documents(path):
                found[(obj.get("kind", ""), (obj.get("metadata") or {}).get("name", ""))] = path
    return found


def check_no_copies(overlay: Path, base: Path) -> list[str]:
    base_objects = _objects_of(base)
    return [f"{_shown(path)}: redefines {kind} {name} from {_shown(base)}; change it with a patch instead"
            for (kind, name), path in _objects_of(overlay).items() if (kind, name) in base_objects]


def check_key_order(path: Path) -> list[str]:
    gaps = []
    for number, doc in enumerate(_documents(path), start=1):
        keys = [k for k in doc if k in LEADING_KEYS]
        leading = list(doc)[:len(keys)]
        if keys != [k for k in LEADING_KEYS if k in doc] or leading != keys:
            gaps.append(f"{_shown(path)} document {number}: "
                        f"keys start {list(doc)[:3]}, expected apiVersion, kind, metadata first")
    return gaps


def check_repository(root: Path = REPO) -> list[str]:
    gaps: list[str] = []
    directories = kustomization_dirs(root / "base") + kustomization_dirs(root / "overlays")
    for directory in directories:
        gaps += check_build(directory)
        gaps += check_kustomization(directory)
    for overlay in kustomization_dirs(root / "overlays"):
        gaps += check_no_copies(overlay, root / "base")
    for path in sorted((root / "base").glob("**/*.yaml")) + sorted((root / "overlays").glob("**/*.yaml")):
        gaps += check_key_order(path)
    return gaps


def main() -> int:
    try:
        gaps = check_repository()
    except ConformanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for gap in gaps:
        print(gap, file=sys.stderr)
    if gaps:
        print(f"{len(gaps)} convention gap(s)", file=sys.stderr)
        return 1
    print("conventions hold: every overlay builds, no deprecated fields, no copies, canonical key order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
