"""The cluster phase: our kind cluster (created, or reused while its fingerprint matches) with the
run's images loaded, or the existing context the user named, after preflight checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conformance.live.access import preflight
from conformance.live.access.kube import Kube
from conformance.live.options import Options
from conformance.live.phases.images import ImageSet
from conformance.live.platform import kind
from conformance.static.manifests import kubectl


@dataclass
class Cluster:
    """Phase 2: a cluster to talk to (`kube`), and whether this run created it."""

    options: Options
    images: ImageSet
    progress: Callable[[str], None]
    kube: Kube | None = None
    kind: kind.Cluster | None = None

    name = "cluster"

    @property
    def creates(self) -> bool:
        return preflight.resolve_target(self.options.target, self.options.context, kind.NAME).creates_cluster

    def up(self) -> None:
        target = preflight.resolve_target(self.options.target, self.options.context, kind.NAME)
        if not target.creates_cluster:
            preflight.preflight("existing", target.context)
            self.kube = Kube(context=target.context)
            return
        preflight.preflight(self.options.target, self.options.context,
                            extra_dirs=[Path(self.images.files["kind"]).parent, Path(kubectl()).parent])
        node = self.images.refs["node"]
        self.kind = kind.Cluster(
            name=kind.NAME, nodes=self.options.nodes, node_image=node,
            fingerprint=kind.fingerprint(self.options.nodes, node, self.images.ids.get("node")),
            kind_binary=self.images.files["kind"], env=dict(os.environ))
        self.kind.ensure(self.progress)
        self.kind.load_images(self.images.load_into_kind(), self.progress)
        self.kube = self.kind.kube

    def down(self) -> bool:
        """Delete the cluster if this run created it (never with --keep); True if no cluster is left."""
        if self.kind is None or not self.kind.created or self.options.keep:
            return False
        self.progress(f"down: deleting kind cluster {self.kind.name} (created by this run)")
        self.kind.delete()
        return True
