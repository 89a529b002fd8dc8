"""The live tier's options, built once (from pytest's options or the cluster CLI), with the image
source resolved inside them so that every phase reads one object."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import fixtures
from conformance.errors import PreflightError
from conformance.paths import REPORTS

REGISTRY_PROBE = "https://registry-1.docker.io/v2/"
IMAGE_SOURCES = ("auto", "pull", "build")


def registry_answers(url: str = REGISTRY_PROBE, timeout: float = 5.0) -> bool:
    """Whether a container registry answers at all (401 counts: it is there)."""
    try:
        urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - a fixed https URL
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


@dataclass
class Options:
    target: str = "kind"
    context: str | None = None
    keep: bool = False
    images: str = "auto"  # as requested: auto, pull or build
    nodes: int = 3
    report_dir: Path = REPORTS
    kubernetes: str | None = None
    node_image: str | None = None
    istio: str | None = None
    source: str | None = field(default=None)  # the resolved image source: pull or build

    @classmethod
    def from_pytest(cls, config: Any) -> Options:
        return cls(target=config.getoption("target"), context=config.getoption("context"),
                   keep=config.getoption("keep"), images=config.getoption("images"),
                   nodes=config.getoption("nodes"), report_dir=Path(config.getoption("report_dir")),
                   kubernetes=config.getoption("kubernetes"), node_image=config.getoption("node_image"),
                   istio=config.getoption("istio"))

    def resolve(self, progress: Callable[[str], None]) -> str:
        """Pick the image source (auto: build when no registry answers, and say so) and check the options."""
        if self.source is None:
            if self.images != "auto":
                self.source = self.images
            elif registry_answers():
                self.source = "pull"
            else:
                progress("images: no container registry answers (registry-1.docker.io); building every image from "
                         "package registries instead (--images build)")
                self.source = "build"
            self.check()
        return self.source

    def check(self) -> None:
        """Refuse combinations this run cannot honour, in one line, before anything starts."""
        fixtures.select(self.kubernetes, self.istio)
        p = fixtures.pins()
        release = p["istio"]
        if self.source == "build" and release.get("build") is False:
            raise PreflightError(f"--istio {release['release']} cannot be built from package registries here: "
                                 "fixtures/versions.yaml says why; use --images pull, or an Istio release that builds")
        if self.source == "build" and self.node_image:
            raise PreflightError("--node-image needs --images pull: the hermetic build makes its own node image")

    def pull_node_image(self) -> str:
        return self.node_image or fixtures.pins()["kind"]["node_image"]
