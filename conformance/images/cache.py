"""The stage cache: one directory per stage and per hash of that stage's inputs.

``~/.cache/cortex-conformance/<stage>/<sha256 of inputs>/`` is built in a temporary sibling
and renamed into place only when complete, so an interrupted build leaves nothing that looks
finished, and a changed pin builds beside the old copy instead of over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.paths import cache_root

RESULT = "result.json"


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        raise TypeError(f"hash a file's content with file_digest(), not its path: {value}")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot hash {type(value).__name__} in stage inputs")


def input_key(inputs: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of a stage's inputs: key order and tuples vs lists don't matter."""
    text = json.dumps(_canonical(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """Digest of a file we own (a fixture, a script) so that editing it rebuilds the stage."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def tree_size(path: Path) -> int:
    """Bytes on disk under ``path``, counting each hard-linked file once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


@dataclass(frozen=True)
class Entry:
    stage: str
    key: str
    path: Path
    hit: bool
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        return json.loads((self.path / RESULT).read_text())["result"]


def stage_dir(stage: str, key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / stage / key


def lookup(stage: str, inputs: Mapping[str, Any], root: Path | None = None) -> Path | None:
    path = stage_dir(stage, input_key(inputs), root)
    return path if (path / RESULT).is_file() else None


def ensure(
    stage: str,
    inputs: Mapping[str, Any],
    build: Callable[[Path], Mapping[str, Any]],
    *,
    root: Path | None = None,
) -> Entry:
    """Return the cached stage directory for ``inputs``, building it with ``build(tmpdir)`` on a miss.

    ``build`` fills the directory it is given and returns the stage's result (paths relative
    to that directory, image refs, digests); it is stored as result.json together with the
    inputs, and only then is the directory renamed to its final name.
    """
    key = input_key(inputs)
    final = stage_dir(stage, key, root)
    started = time.monotonic()
    if (final / RESULT).is_file():
        return Entry(stage, key, final, True, time.monotonic() - started)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{key[:16]}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        result = dict(build(tmp))
        document = {"stage": stage, "key": key, "inputs": _canonical(inputs), "result": result}
        (tmp / RESULT).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(tmp, final)
        except OSError:
            # Another build of the same inputs finished first; its copy is as good as ours.
            if not (final / RESULT).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Entry(stage, key, final, False, time.monotonic() - started)
