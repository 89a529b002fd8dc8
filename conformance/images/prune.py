"""Free the stage cache of entries that no supported version reaches any more.

A changed pin or build script builds beside the old entry (cache.py), so the cache only grows:
on this machine it held four node images and three Kubernetes builds, of which two and one were
current, with the disk 97 % full. `python -m conformance.images --prune` keeps every entry that the
current inputs of some supported Kubernetes minor and Istio release (fixtures/versions.yaml) lead
to, and the build directories of builds still running; it deletes the rest.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from conformance import fixtures
from conformance.images import cache, dockerd, images, stage
from conformance.images.cache import tree_size
from conformance.paths import cache_root

KEY = re.compile(r"[0-9a-f]{64}")
BUILDING = re.compile(r"\.tmp-[0-9a-f]{16}-(\d+)")


def current() -> dict[tuple[str, str], cache.Entry]:
    """The entries the current inputs of each supported version combination lead to, by (stage, key)."""
    kept: dict[tuple[str, str], cache.Entry] = {}
    try:
        for minor in fixtures.supported_minors():
            for release in fixtures.supported_istio():
                if fixtures.versions()["istio"]["releases"][release].get("build") is False:
                    continue  # pull only: nothing of it is built
                fixtures.select(minor, release)
                kept |= {(name, entry.key): entry for name, entry in stage.cached().items()}
    finally:
        fixtures.select(None, None)
    return kept


def stale(root: Path | None = None, kept: dict[tuple[str, str], cache.Entry] | None = None) -> list[Path]:
    """Entries of the stage cache under `root` that no supported version reaches (`kept`, by default
    current()), and builds left half-done."""
    root = root or cache_root()
    kept = current() if kept is None else kept
    found = []
    for name in stage.REGISTRY:
        directory = root / name
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            building = BUILDING.fullmatch(entry.name)
            if (KEY.fullmatch(entry.name) and (name, entry.name) not in kept) or \
                    (building and not dockerd.alive(int(building.group(1)))):
                found.append(entry)
    return found


def prune(root: Path | None = None, kept: dict[tuple[str, str], cache.Entry] | None = None, *,
          progress=print) -> int:
    """Delete the stale entries; returns the bytes freed."""
    freed = 0
    for entry in stale(root, kept):
        size = tree_size(entry)
        progress(f"prune: {entry.parent.name}/{entry.name[:12]} ({size / (1 << 20):,.0f} MiB)")
        shutil.rmtree(entry)
        freed += size
    return freed


def prune_images(kept: dict[tuple[str, str], cache.Entry], *, progress=print) -> int:
    """Remove our images (cortex.local/...) that no kept entry holds from the private daemon, if it runs for
    this cache; returns how many went. An image a container uses (a kind node) stays: docker refuses."""
    # A daemon started for another cache (CORTEX_CONFORMANCE_CACHE) holds that cache's images, which
    # this cache's entries know nothing of: all of them would look stale.
    if not dockerd.serves_this_cache():
        return 0
    wanted = {image["id"] for entry in kept.values() for image in entry.result.get("images", {}).values()}
    listed = images.docker("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").splitlines()
    removed = 0
    for line in filter(None, listed):
        image_id, ref = line.split(" ", 1)
        if ref.startswith("cortex.local/") and image_id not in wanted:
            try:
                images.docker("rmi", ref)
            except images.ImageError:
                continue  # in use by a container
            progress(f"prune: image {ref}")
            removed += 1
    return removed
