"""The one loader of fixtures/: pinned versions, expectations and the names of the deployment.

Every data file is parsed once per process and read through here, so the static tier, the live
tier and the report see the same values. Expectations are never read back from the rendered
overlay or the cluster under test: they are what those are held against.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import InputError
from conformance.paths import EXPECTATIONS, FIXTURES

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load_file(path: Path) -> Any:
    """A YAML data file, parsed once; a broken one is one InputError line naming the file."""
    try:
        # libyaml's loader when present: the same values as safe_load, several times faster, which
        # the static tier's second-long budget notices on the larger expectations files.
        return yaml.load(Path(path).read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None


def load(relative: str) -> Any:
    """A data file under fixtures/, by its path relative to that folder."""
    return load_file(FIXTURES / relative)


def versions() -> dict[str, Any]:
    """fixtures/versions.yaml as written: every supported Kubernetes minor and Istio release."""
    return load("versions.yaml")


@dataclass(frozen=True)
class Selection:
    """The Kubernetes minor and the Istio release a run targets (None: the defaults)."""

    kubernetes: str | None = None
    istio: str | None = None

    @property
    def supported(self) -> bool:
        """Whether Istio's own support table lists this pair (the defaults filled in)."""
        return support(self.kubernetes, self.istio)["supported"]


_SELECTED = Selection()
# What versions.yaml says about an Istio release rather than what builds or installs it: kept out of
# pins()["istio"], so that the image caches and the platform's fingerprint do not change with them.
DESCRIPTIVE = ("kubernetes", "corresponds_to")
AHEAD = "ahead of support"


def supported_minors() -> list[str]:
    """The pinned Kubernetes minors: those the suite can build and run, supported by Istio or not."""
    return list(versions()["kubernetes"]["minors"])


def supported_istio() -> list[str]:
    return list(versions()["istio"]["releases"])


def select(kubernetes: str | None = None, istio: str | None = None) -> Selection:
    """Choose what the rest of this process pins (`--kubernetes`, `--istio`); one line for a wrong choice.

    A pinned pair that Istio does not support is accepted: the selection says so (`supported`), and so do
    the results and the report ("ahead of support")."""
    global _SELECTED
    for flag, value, known in (("--kubernetes", kubernetes, supported_minors()), ("--istio", istio, supported_istio())):
        if value is not None and value not in known:
            raise InputError(f"{flag} {value}: not a supported version; fixtures/versions.yaml pins "
                             f"{', '.join(known)}")
    _SELECTED = Selection(kubernetes, istio)
    return _SELECTED


def selected() -> tuple[str, str]:
    """(Kubernetes minor, Istio release) of this process: the selection, else the defaults."""
    raw = versions()
    return (_SELECTED.kubernetes or str(raw["kubernetes"]["default"]),
            _SELECTED.istio or str(raw["istio"]["default"]))


def support(kubernetes: str | None = None, istio: str | None = None) -> dict[str, Any]:
    """Whether Istio's support table lists the pair (None: this process's selection), and a line saying so:
    {kubernetes, istio, supported, minors (what the release supports), source, text}."""
    minor, release = selected()
    minor, release = kubernetes or minor, istio or release
    raw = versions()["istio"]
    minors = [str(m) for m in raw["releases"].get(release, {}).get("kubernetes") or []]
    supported = minor in minors
    span = f"{minors[0]}-{minors[-1]}" if minors else "no Kubernetes minor"
    text = (f"supported: Istio {release} supports Kubernetes {span}" if supported
            else f"{AHEAD}: Istio {release} supports Kubernetes {span}, not {minor}")
    return {"kubernetes": minor, "istio": release, "supported": supported, "minors": minors,
            "source": str(raw.get("support_source") or ""), "text": text}


def pins() -> dict[str, Any]:
    """The pins of the selected Kubernetes minor and Istio release, one value per component:

    kubernetes {minor, version, schema}, kind {version, node_image}, istio {release, ...the release's
    pins}, build {...shared, etcd, coredns, pause, cri_tools of the minor}, vault, metrics_server,
    telemetry. Image stages key their caches on these values. What describes rather than pins the
    release (its supported minors, the release its module corresponds to) is in `about`.
    """
    raw = versions()
    minor, release = selected()
    k8s = raw["kubernetes"]["minors"][minor]
    istio = raw["istio"]["releases"][release]
    return {
        **{k: v for k, v in raw.items() if k not in ("kubernetes", "istio", "build")},
        "kubernetes": {"minor": minor, "version": k8s["version"], "schema": f"v{minor}.0"},
        "kind": {"version": k8s["kind"], "node_image": k8s["node_image"]},
        "istio": {"release": release, **{k: v for k, v in istio.items() if k not in DESCRIPTIVE}},
        "build": {**raw["build"], **{k: k8s[k] for k in ("etcd", "coredns", "pause", "cri_tools")}},
        "about": {"istio_corresponds_to": istio.get("corresponds_to"), "support": support(minor, release)},
    }


def expectations(name: str) -> Any:
    """fixtures/expectations/<name>.yaml."""
    return load_file(EXPECTATIONS / f"{name}.yaml")


@dataclass(frozen=True)
class Gateway:
    """The Istio ingress gateway the API is reached through."""

    namespace: str
    labels: dict[str, str]
    host: str
    node_ports: dict[str, int]
    host_ports: dict[str, int]


@dataclass(frozen=True)
class Workload:
    """Where cortex-api runs and what it consists of (fixtures/expectations/workload.yaml)."""

    namespace: str
    name: str
    labels: dict[str, str]
    containers: tuple[str, ...]
    service_account: str
    gateway: Gateway
    client_namespaces: tuple[str, ...]

    @property
    def selector(self) -> str:
        """The pods' label selector as kubectl takes it."""
        return ",".join(f"{k}={v}" for k, v in self.labels.items())

    def ref(self, kind: str, name: str | None = None) -> str:
        """How messages name an object of the workload: `Service cortex-dev/cortex-api`."""
        return f"{kind} {self.namespace}/{name or self.name}"


@cache
def workload() -> Workload:
    spec = expectations("workload")
    gateway = spec["gateway"]
    return Workload(
        namespace=spec["namespace"], name=spec["name"], labels=dict(spec["labels"]),
        containers=tuple(spec["containers"]), service_account=spec["service_account"],
        gateway=Gateway(namespace=gateway["namespace"], labels=dict(gateway["labels"]), host=gateway["host"],
                        node_ports=dict(gateway["node_ports"]), host_ports=dict(gateway["host_ports"])),
        client_namespaces=tuple(spec["client_namespaces"]),
    )
