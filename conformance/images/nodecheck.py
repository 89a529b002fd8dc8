"""The image-list check: a node image must already hold every image its cluster will run.

kind's own node build fetches missing images from a registry and, offline, the node is
committed without them; the cluster then hangs in ImagePullBackOff long after the build
"succeeded". This check runs before the node is committed and names what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable

from conformance.errors import ConformanceError

DEFAULT_REGISTRY = "docker.io"


class NodeImageIncomplete(ConformanceError):
    """The node image lacks images that a cluster made from it needs."""


def normalize(ref: str) -> str:
    """Fully qualify an image reference the way containerd names it.

    ``busybox`` -> ``docker.io/library/busybox:latest``; ``x/y:1`` -> ``docker.io/x/y:1``;
    a reference with a digest keeps its digest and gets no tag.
    """
    ref = ref.strip()
    if not ref:
        raise ValueError("empty image reference")
    name, at, digest = ref.partition("@")
    first, slash, _rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = f"{DEFAULT_REGISTRY}/{name}" if slash else f"{DEFAULT_REGISTRY}/library/{name}"
    last = name.rsplit("/", 1)[-1]
    if not at and ":" not in last:
        name += ":latest"
    return f"{name}@{digest}" if at else name


def missing(required: Iterable[str], present: Iterable[str]) -> list[str]:
    """The required references that ``present`` lacks, compared fully qualified, sorted."""
    have = {normalize(ref) for ref in present}
    return sorted({normalize(ref) for ref in required} - have)


def assert_complete(required: Iterable[str], present: Iterable[str], *, node: str) -> None:
    gaps = missing(required, present)
    if gaps:
        raise NodeImageIncomplete(f"node image {node} lacks {len(gaps)} required image(s): {', '.join(gaps)}")
