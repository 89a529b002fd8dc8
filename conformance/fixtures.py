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


@cache
def load_file(path: Path) -> Any:
    """A YAML data file, parsed once; a broken one is one InputError line naming the file."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None


def load(relative: str) -> Any:
    """A data file under fixtures/, by its path relative to that folder."""
    return load_file(FIXTURES / relative)


def versions() -> dict[str, Any]:
    """fixtures/versions.yaml: every pinned version the suite depends on."""
    return load("versions.yaml")


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
