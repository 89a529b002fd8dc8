"""Stages: named, cached build steps with declared dependencies, and the image set they produce.

A stage's cache key covers its own inputs (pins, digests of our fixture files, the Go version)
and the keys of the stages it depends on, so a changed pin rebuilds exactly the stages
downstream of it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from conformance import fixtures
from conformance.images import cache as stage_cache
from conformance.images import images
from conformance.images.gobuild import go_binary
from conformance.progress import Progress

IMAGE_SET_VERSION = 1


@dataclass
class Context:
    """What a stage's build sees: the pins, the finished dependencies, a log directory."""

    pins: Mapping[str, Any]
    done: dict[str, stage_cache.Entry] = field(default_factory=dict)

    def dep(self, name: str) -> stage_cache.Entry:
        return self.done[name]

    def path(self, stage: str, relative: str) -> Path:
        return self.done[stage].path / relative

    def log(self, stage: str) -> Path:
        return stage_cache.cache_root() / "logs" / f"{stage}.log"


@dataclass(frozen=True)
class Stage:
    name: str
    group: str
    summary: str
    inputs: Callable[[Context], Mapping[str, Any]]
    build: Callable[[Context, Path], Mapping[str, Any]]
    deps: tuple[str, ...] = ()
    background: bool = False  # mostly waiting on the network or the disk: may overlap a compile


REGISTRY: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    if stage.name in REGISTRY:
        raise ValueError(f"stage {stage.name} registered twice")
    REGISTRY[stage.name] = stage
    return stage


@cache
def go_version() -> str:
    return subprocess.run([go_binary(), "env", "GOVERSION"], capture_output=True, text=True,
                          check=True).stdout.strip()


def closure(names: Iterable[str]) -> list[str]:
    """``names`` and everything they depend on, dependencies first."""
    order: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise ValueError(f"stage dependency cycle: {' -> '.join((*trail, name))}")
        if name in order:
            return
        if name not in REGISTRY:
            raise KeyError(name)
        for dep in REGISTRY[name].deps:
            visit(dep, (*trail, name))
        order.append(name)

    for name in names:
        visit(name, ())
    return order


def full_inputs(stage: Stage, ctx: Context) -> dict[str, Any]:
    return {
        "stage": stage.name,
        "inputs": dict(stage.inputs(ctx)),
        "deps": {dep: ctx.done[dep].key for dep in stage.deps},
    }


@dataclass(frozen=True)
class Outcome:
    entry: stage_cache.Entry
    loaded_images: int
    seconds: float


def _ensure_one(stage: Stage, ctx: Context, progress: Callable[[str], None]) -> Outcome:
    started = time.monotonic()
    inputs = full_inputs(stage, ctx)
    hit = stage_cache.lookup(stage.name, inputs) is not None

    def build(tmp: Path) -> Mapping[str, Any]:
        began = time.monotonic()
        result = dict(stage.build(ctx, tmp))
        result["build_seconds"] = round(time.monotonic() - began, 1)
        return result

    if hit or not isinstance(progress, Progress):
        progress(f"{stage.name}: {'cached' if hit else 'building'} ...")
        entry = stage_cache.ensure(stage.name, inputs, build)
    else:
        # A build shows its progress (Go packages compiled, debootstrap's stage) from its own log.
        with progress.step(f"{stage.name}: building", log=ctx.log(stage.name)):
            entry = stage_cache.ensure(stage.name, inputs, build)
    loaded = 0
    for image in entry.result.get("images", {}).values():
        loaded += images.ensure_loaded(image["ref"], entry.path / image["archive"], image["id"])
    return Outcome(entry=entry, loaded_images=loaded, seconds=time.monotonic() - started)


def run(names: Iterable[str], *, progress: Callable[[str], None] = lambda _m: None) -> dict[str, Outcome]:
    """Build or reuse every stage in ``names`` (with dependencies); make sure their images are loaded.

    Stages marked ``background`` (debootstrap: network and disk, little CPU) run one after another
    in a second thread while the Go compiles use both cores; one at a time because they share
    the .deb cache. Everything else runs in dependency order on the calling thread.
    """
    ctx = Context(pins=fixtures.pins())
    order = closure(names)
    outcomes: dict[str, Outcome] = {}
    side = [name for name in order if REGISTRY[name].background and not REGISTRY[name].deps]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-background") as pool:
        futures = {}
        for name in side:
            # Each background stage waits for the one before it inside the single worker.
            futures[name] = pool.submit(_ensure_one, REGISTRY[name], ctx, progress)
        for name in order:
            outcome = futures[name].result() if name in futures else _ensure_one(REGISTRY[name], ctx, progress)
            ctx.done[name] = outcome.entry
            outcomes[name] = outcome
    return outcomes


def cached(names: Iterable[str] | None = None) -> dict[str, stage_cache.Entry]:
    """The cache entries that match the current inputs, built by earlier runs; builds nothing."""
    ctx = Context(pins=fixtures.pins())
    found: dict[str, stage_cache.Entry] = {}
    for name in closure(names if names is not None else REGISTRY):
        stage = REGISTRY[name]
        if any(dep not in ctx.done for dep in stage.deps):
            continue
        inputs = full_inputs(stage, ctx)
        path = stage_cache.lookup(name, inputs)
        if path is not None:
            ctx.done[name] = found[name] = stage_cache.Entry(name, stage_cache.input_key(inputs), path, True, 0.0)
    return found


def image_set(entries: Mapping[str, stage_cache.Entry]) -> dict[str, Any]:
    """The image-set document the live tier reads (format: docs/hermetic-interfaces.md)."""
    doc: dict[str, Any] = {
        "version": IMAGE_SET_VERSION,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "images": {},
        "files": {},
    }
    for name, entry in entries.items():
        result = entry.result
        for role, image in result.get("images", {}).items():
            doc["images"][role] = {
                "ref": image["ref"],
                "id": image["id"],
                "archive": str(entry.path / image["archive"]),
                "stage": name,
                "in_node": bool(image.get("in_node", False)),
            }
        for role, rel in result.get("files", {}).items():
            if role == "rootfs":
                continue  # root filesystem trees are inputs of image stages, not for the live tier
            path = Path(rel)
            doc["files"][role] = str(path if path.is_absolute() else entry.path / rel)
    return doc


def write_image_set(doc: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
