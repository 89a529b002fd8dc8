"""The images phase: every image the run needs, pulled by the nodes or built from package registries.

With `--images build` on our own kind cluster the suite starts its private dockerd (conformance.images
.dockerd) and builds or reuses every stage; with `pull` only our own stand-ins and tools are built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from conformance import fixtures
from conformance.live.options import Options

BUILD_GROUPS = ("cluster", "vault", "istio", "telemetry", "workload")
# What a pulling run still builds: our own images, and the tools and upstream manifests that come
# from Go modules (kind, helm with Istio's charts, metrics-server's and vault-k8s's manifests).
PULL_STAGES = ("kind", "cluster-files", "vault-injector", "istio-charts")


@dataclass
class ImageSet:
    """Role -> image reference, plus the files (binaries, upstream manifests) the run needs."""

    source: str
    refs: dict[str, str]
    ids: dict[str, str]
    preloaded: set[str]  # roles the nodes already hold or pull themselves: never `kind load`ed
    files: dict[str, str]

    def load_into_kind(self) -> list[str]:
        return [ref for role, ref in self.refs.items() if role not in self.preloaded and role != "node"]


def build_images(progress: Callable[[str], None], groups: tuple[str, ...] = BUILD_GROUPS,
                 stages: tuple[str, ...] = ()) -> ImageSet:
    """Every stage of `groups` (and `stages`), cached by input hash (seconds when nothing changed)."""
    from conformance.images import stage

    names = [s.name for s in stage.REGISTRY.values() if s.group in groups] + list(stages)
    outcomes = stage.run(names, progress=progress)
    entries = {**stage.cached(), **{name: o.entry for name, o in outcomes.items()}}
    doc = stage.image_set(entries)
    images = doc["images"]
    # What the node image holds already (Kubernetes' images and the platform's): never `kind load`ed.
    baked = set(entries["node-image"].result.get("node_images", [])) if "node-image" in entries else set()
    return ImageSet("build", {r: i["ref"] for r, i in images.items()}, {r: i["id"] for r, i in images.items()},
                    {r for r, i in images.items() if i["in_node"] or i["ref"] in baked}, doc["files"])


def pull_images(progress: Callable[[str], None], node_image: str) -> ImageSet:
    """Upstream images at the pinned versions; only our own stand-ins and tools are built."""
    built = build_images(progress, groups=("workload",), stages=PULL_STAGES)
    p = fixtures.pins()
    ours = (*fixtures.workload().containers, "conformance-client")
    refs = {
        "node": node_image,
        "metrics-server": f"registry.k8s.io/metrics-server/metrics-server:{p['metrics_server']['version']}",
        "vault-server": p["vault"]["image"],
        "vault-agent": p["vault"]["image"],
        "vault-injector": f"hashicorp/vault-k8s:{p['vault']['injector'].rpartition('@v')[2]}",
        "collector": p["telemetry"]["pull_image"],
        **{role: ref for role, ref in built.refs.items() if role in ours},
    }
    # Upstream images are pulled by the nodes themselves; only our own are loaded into kind.
    upstream = {role for role in refs if role not in built.refs}
    return ImageSet("pull", refs, {r: built.ids[r] for r in refs if r in built.ids}, upstream, built.files)


@dataclass
class Images:
    """Phase 1: the image set, and the private dockerd when this run had to start it."""

    options: Options
    progress: Callable[[str], None]
    set: ImageSet | None = None
    started_dockerd: bool = False

    name = "images"

    def up(self) -> None:
        source = self.options.resolve(self.progress)
        if source == "build" and self.options.target == "kind":
            self._private_docker()
        self.set = (build_images(self.progress) if source == "build"
                    else pull_images(self.progress, self.options.pull_node_image()))

    def _private_docker(self) -> None:
        from conformance.images import dockerd

        was_running = dockerd.answers()
        daemon = dockerd.start()
        self.started_dockerd = not was_running
        os.environ.update(daemon.env())

    def down(self, *, cluster_gone: bool) -> None:
        """Stop the private dockerd if this run started it and left no cluster in it."""
        if self.started_dockerd and cluster_gone:
            from conformance.images import dockerd

            dockerd.stop()
