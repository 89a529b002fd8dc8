"""Where a gap comes from: the file and line a user edits (base/, overlays/dev/), not the rendering.

A gap names a rendered object ("Deployment cortex-dev/cortex-api container redis-proxy: ..."). The
object's source file comes from kustomize itself: the overlay is rendered a second time, wrapped in a
kustomization that asks for `buildMetadata: [originAnnotations]`. That rendering is read here only;
the one the rules see is never touched (the rules are closed-world over annotations). kustomize says
which file a resource came from but not which patch changed a field, so the patches of every
kustomization on the way (`patches:` with `target:`, or a patch naming its object) are searched for
the gap's field first, the last applied first, then the resource file. For a rendered file
(`--manifests`) the origin is that file's document.

Everything here runs only for the gaps of a failing check, once per input: a passing run never
renders twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import yaml

from conformance.paths import REPO
from conformance.static.gaps import OBJECT_REF
from conformance.static.manifests import kubectl
from conformance.static.yamlfast import FastSafeLoader

ORIGIN = "config.kubernetes.io/origin"
KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CONTAINER = re.compile(r"\b(?:init )?container ([a-z0-9][a-z0-9.-]*)")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")


@dataclass(frozen=True)
class Origin:
    """A line in a source file; path relative to the repository when the file is in it."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path.resolve())


@dataclass(frozen=True)
class _Document:
    kind: str
    name: str
    namespace: str | None
    start: int  # 1-based, first line of the document
    end: int  # 1-based, last line


# Source files are read once per run: a check with thousands of gaps asks about the same few files.
@cache
def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@cache
def _documents(path: Path) -> list[_Document]:
    """Each YAML document of a file with its line range; unreadable documents are left out."""
    lines = _lines(path)
    found: list[_Document] = []
    start = 0
    for index in [*[i for i, line in enumerate(lines) if line.rstrip() == "---"], len(lines)]:
        chunk = "\n".join(lines[start:index])
        try:
            # libyaml, as the static tier's own loader: a rendered bundle has thousands of documents.
            doc = yaml.load(chunk, Loader=FastSafeLoader)  # noqa: S506 (FastSafeLoader is a SafeLoader)
        except yaml.YAMLError:
            doc = None
        if isinstance(doc, dict) and doc.get("kind"):
            # The document's first line of YAML, past the comments that head it.
            while start < index and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
                start += 1
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            found.append(_Document(str(doc["kind"]), str(meta.get("name", "")), meta.get("namespace"),
                                   start + 1, max(start + 1, index)))
        start = index + 1
    return found


def _container_block(lines: list[str], first: int, last: int, container: str) -> tuple[int, int] | None:
    """The 1-based line range of a container's list item, `- name: NAME` up to its next sibling."""
    pattern = re.compile(rf"^(\s*)-\s+name:\s*[\"']?{re.escape(container)}[\"']?\s*$")
    for number in range(first, last + 1):
        match = pattern.match(lines[number - 1])
        if match is None:
            continue
        indent = len(match.group(1))
        end = number
        for following in range(number + 1, last + 1):
            text = lines[following - 1]
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            end = following
        return number, end
    return None


def _field_line(lines: list[str], first: int, last: int, words: list[str]) -> int | None:
    """The first line in the range whose key is one of the gap's words, in the gap's order."""
    for word in words:
        key = re.compile(rf"^\s*(?:-\s+)?[\"']?{re.escape(word)}[\"']?:(?:\s|$)")
        for number in range(first, last + 1):
            if key.match(lines[number - 1]):
                return number
    return None


def _locate(path: Path, doc: _Document, gap_rest: str, *, patch: bool = False) -> tuple[int, bool]:
    """(line, whether a field of the gap was found there) within one document of a source file.

    A patch that does not list the gap's container says nothing about it, whatever fields it sets.
    """
    lines = _lines(path)
    first, last = doc.start, min(doc.end, len(lines))
    # "container NAME" narrows the search to that container's item; words that only look like one
    # ("container port") find no item and leave the whole document.
    container = CONTAINER.search(gap_rest)
    block = _container_block(lines, first, last, container.group(1)) if container else None
    if block is None:
        if container and patch:
            return first, False
        container = None
    else:
        first, last = block
    words = [w for w in WORD.findall(gap_rest) if not container or w != container.group(1)]
    line = _field_line(lines, first, last, words)
    return (line, True) if line is not None else (first, False)


def _kustomizations(directory: Path, seen: set[Path] | None = None) -> Iterator[tuple[Path, dict]]:
    """Each kustomization from the overlay down through its directory resources, innermost first."""
    seen = set() if seen is None else seen
    directory = directory.resolve()
    if directory in seen:
        return
    seen.add(directory)
    file = next((directory / n for n in KUSTOMIZATIONS if (directory / n).is_file()), None)
    if file is None:
        return
    spec = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    for resource in spec.get("resources") or []:
        if isinstance(resource, str) and (directory / resource).is_dir():
            yield from _kustomizations(directory / resource, seen)
    yield directory, spec


def _patches(overlay: Path) -> list[tuple[Path, str | None, str | None]]:
    """(patch file, target kind, target name) in the order kustomize applies them."""
    found = []
    for directory, spec in _kustomizations(overlay):
        for patch in spec.get("patches") or []:
            if not isinstance(patch, dict) or not patch.get("path"):
                continue
            target = patch.get("target") or {}
            found.append((directory / patch["path"], target.get("kind"), target.get("name")))
    return found


def _object(gap: str) -> tuple[str, str | None, str, str] | None:
    """(kind, namespace, name, the rest of the gap) of a gap that starts with its object."""
    match = OBJECT_REF.match(gap)
    if match is None:
        return None
    kind, namespace, name = match.groups()
    return kind, namespace, name, gap[match.end():]


class Origins:
    """The origin of each gap of one input (an overlay directory or a rendered file)."""

    def __init__(self, source: str) -> None:
        path = Path(source)
        self.input = path if path.is_absolute() else REPO / path
        self.is_overlay = self.input.is_dir()

    def fallback(self) -> Origin:
        """Where a gap with no object of its own points: the overlay's kustomization, or the file."""
        if self.is_overlay:
            file = next((self.input / n for n in KUSTOMIZATIONS if (self.input / n).is_file()), self.input)
            return Origin(shown(file), 1)
        return Origin(shown(self.input), 1)

    @cached_property
    def _resource_files(self) -> dict[tuple[str, str | None, str], Path]:
        """(kind, namespace, name) of every rendered object -> its source file, as kustomize records it."""
        with tempfile.TemporaryDirectory(prefix="cortex-origins-") as top:
            (Path(top) / "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                # kustomize takes no absolute resource paths, so the overlay is named relative to here.
                "resources": [os.path.relpath(self.input.resolve(), top)],
                "buildMetadata": ["originAnnotations"]}))
            proc = subprocess.run([kubectl(), "kustomize", top], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return {}
        files = {}
        for doc in yaml.load_all(proc.stdout, Loader=FastSafeLoader):
            if not isinstance(doc, dict):
                continue
            meta = doc.get("metadata") or {}
            origin = yaml.safe_load((meta.get("annotations") or {}).get(ORIGIN) or "null") or {}
            if isinstance(origin, dict) and origin.get("path"):
                # Relative to the wrapping kustomization's directory (gone by now: only the text is used).
                files[(doc.get("kind"), meta.get("namespace"), meta.get("name"))] = Path(
                    os.path.normpath(os.path.join(top, origin["path"])))
        return files

    @cached_property
    def _patches(self) -> list[tuple[Path, str | None, str | None]]:
        return _patches(self.input) if self.is_overlay else []

    @cached_property
    def _file_documents(self) -> dict[tuple[str, str], list[_Document]]:
        index: dict[tuple[str, str], list[_Document]] = {}
        for doc in [] if self.is_overlay else _documents(self.input):
            index.setdefault((doc.kind, doc.name), []).append(doc)
        return index

    def _source_file(self, kind: str, namespace: str | None, name: str) -> Path | None:
        files = self._resource_files
        found = files.get((kind, namespace, name))
        if found is None:
            found = next((p for (k, _, n), p in files.items() if (k, n) == (kind, name)), None)
        return found

    def of(self, gap: str) -> Origin:
        """The line to edit for one gap; the input's own file at line 1 when nothing closer is known."""
        parsed = _object(gap)
        if parsed is None:
            return self.fallback()
        kind, namespace, name, rest = parsed
        if not self.is_overlay:
            doc = next((d for d in self._file_documents.get((kind, name), [])
                        if namespace is None or d.namespace in (None, namespace)), None)
            if doc is None:
                return self.fallback()
            return Origin(shown(self.input), _locate(self.input, doc, rest)[0])
        # A patch that sets the gap's field is the line to edit, the last applied first.
        for patch, target_kind, target_name in reversed(self._patches):
            if not patch.is_file():
                continue
            for doc in _documents(patch):
                if (target_kind or doc.kind) != kind or (target_name or doc.name) != name:
                    continue
                line, on_field = _locate(patch, doc, rest, patch=True)
                if on_field:
                    return Origin(shown(patch), line)
        source = self._source_file(kind, namespace, name)
        if source is None or not source.is_file():
            return self.fallback()
        doc = next((d for d in _documents(source) if (d.kind, d.name) == (kind, name)), None)
        if doc is None:
            return Origin(shown(source), 1)
        return Origin(shown(source), _locate(source, doc, rest)[0])
