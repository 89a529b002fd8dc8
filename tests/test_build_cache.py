"""The stage cache: keys follow the inputs, builds land atomically, a changed pin builds beside the old."""

from __future__ import annotations

import pytest

from conformance.images import cache


def test_key_ignores_mapping_order():
    """The same inputs in another order give the same key."""
    assert cache.input_key({"a": 1, "b": {"x": [1, 2]}}) == cache.input_key({"b": {"x": [1, 2]}, "a": 1})


def test_key_changes_with_a_pin():
    """A changed version gives a new key, so it builds beside the old copy."""
    assert cache.input_key({"kubernetes": "v1.34.0"}) != cache.input_key({"kubernetes": "v1.34.1"})


def test_key_is_a_sha256_hex_digest():
    """Keys are the directory names: 64 lowercase hex characters."""
    key = cache.input_key({"x": 1})
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")


def test_paths_are_refused_as_inputs(tmp_path):
    """A path says nothing about content: stage inputs must carry file_digest() instead."""
    with pytest.raises(TypeError, match="file_digest"):
        cache.input_key({"fixture": tmp_path})


def test_file_digest_follows_content(tmp_path):
    """Editing a fixture file changes its digest and so the key of the stage using it."""
    path = tmp_path / "f.yaml"
    path.write_text("a")
    before = cache.file_digest(path)
    path.write_text("b")
    assert cache.file_digest(path) != before


def test_miss_builds_then_hit_reuses(tmp_path):
    """The first ensure builds; the second with the same inputs reuses without calling build."""
    calls = []

    def build(out):
        calls.append(out)
        (out / "artifact").write_text("x")
        return {"files": {"artifact": "artifact"}}

    first = cache.ensure("stage", {"v": 1}, build, root=tmp_path)
    second = cache.ensure("stage", {"v": 1}, build, root=tmp_path)
    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert second.path == tmp_path / "stage" / cache.input_key({"v": 1})
    assert second.result == {"files": {"artifact": "artifact"}}


def test_changed_input_builds_beside_old_copy(tmp_path):
    """A new pin builds a new directory and leaves the old one intact."""
    old = cache.ensure("stage", {"v": 1}, lambda out: {}, root=tmp_path)
    new = cache.ensure("stage", {"v": 2}, lambda out: {}, root=tmp_path)
    assert old.path != new.path
    assert (old.path / cache.RESULT).is_file()
    assert (new.path / cache.RESULT).is_file()


def test_failed_build_leaves_nothing(tmp_path):
    """An interrupted build leaves neither a final directory nor its temporary one."""

    def build(out):
        (out / "half").write_text("x")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError):
        cache.ensure("stage", {"v": 1}, build, root=tmp_path)
    assert list((tmp_path / "stage").iterdir()) == []
    assert cache.lookup("stage", {"v": 1}, root=tmp_path) is None
