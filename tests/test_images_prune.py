"""The stage cache's prune: what the current inputs of a supported version reach stays, the rest goes."""

from __future__ import annotations

import json
import os

from conformance.images import cache, prune, stage


def _entry(root, name, key):
    path = root / name / key
    path.mkdir(parents=True)
    (path / cache.RESULT).write_text(json.dumps({"result": {}}))
    return path


def test_an_entry_of_old_inputs_goes_and_the_current_one_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("CORTEX_CONFORMANCE_CACHE", str(tmp_path))
    # `kind` depends on no other stage: its key is computable from the pins alone.
    kind = stage.REGISTRY["kind"]
    current = cache.input_key(stage.full_inputs(kind, stage.Context(pins=prune.fixtures.pins())))
    kept = _entry(tmp_path, "kind", current)
    old = _entry(tmp_path, "kind", "0" * 64)
    unrelated = tmp_path / "kind" / "notes"  # not an entry: never touched
    unrelated.mkdir()
    assert prune.stale(tmp_path) == [old]
    prune.prune(tmp_path, progress=lambda _m: None)
    assert kept.exists()
    assert unrelated.exists()
    assert not old.exists()


def test_a_half_built_entry_goes_only_when_its_builder_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("CORTEX_CONFORMANCE_CACHE", str(tmp_path))
    building = tmp_path / "kind" / f".tmp-{'a' * 16}-{os.getpid()}"
    building.mkdir(parents=True)
    abandoned = tmp_path / "kind" / f".tmp-{'b' * 16}-{2**22 + 1}"  # above Linux's default pid_max
    abandoned.mkdir()
    assert prune.stale(tmp_path) == [abandoned]
