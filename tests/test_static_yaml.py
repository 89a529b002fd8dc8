"""The faster loader gives exactly what yaml.safe_load gives, errors included, and large inputs load
with their progress shown."""

from __future__ import annotations

import io

import pytest
import yaml

from conformance.errors import InputError
from conformance.paths import REPO
from conformance.static import manifests
from conformance.static.yamlfast import FastSafeLoader

TRICKY = """\
a: &anchor {x: 1, y: [1, 2]}
b: *anchor
c:
  <<: *anchor
  y: 3
d: !!set {p, q}
e: 2026-01-02
f: [yes, no, on, "on", 0x1F, 1_000, .inf, ~, null, 1.5e3, "010", 010]
g: !!binary aGVsbG8=
h: !!omap [{k: 1}]
"""


def load(text: str, loader) -> list:
    return list(yaml.load_all(text, Loader=loader))


@pytest.mark.parametrize("text", [TRICKY, (REPO / "fixtures" / "mutations.yaml").read_text()],
                         ids=["tricky", "mutations-catalogue"])
def test_same_result_as_safe_load(text):
    assert load(text, FastSafeLoader) == load(text, yaml.SafeLoader)


def test_aliases_are_shared_not_copied():
    """An alias is the same object, as with safe_load, so an alias bomb cannot explode in memory."""
    [doc] = load(TRICKY, FastSafeLoader)
    assert doc["a"] is doc["b"]


@pytest.mark.parametrize("text", ["? [1, 2]\n: x\n", "a: !unknown 1\n"], ids=["unhashable-key", "unknown-tag"])
def test_same_errors_as_safe_load(text):
    with pytest.raises(yaml.YAMLError) as ours:
        load(text, FastSafeLoader)
    with pytest.raises(yaml.YAMLError) as theirs:
        load(text, yaml.SafeLoader)
    assert ours.value.problem == theirs.value.problem


def test_a_binary_file_is_named_as_not_yaml(tmp_path):
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\xd0\xcf\x11\xe0")
    with pytest.raises(InputError) as caught:
        manifests.load_file(path)
    assert str(caught.value).startswith(f"manifests file {path} is not a text YAML file (byte 0x8b at offset 1")


def test_loading_counts_documents(tmp_path, dev_bundle):
    loading = manifests.Loading(expected=0)
    path = tmp_path / "dev.yaml"
    path.write_text(dev_bundle.text)
    bundle = manifests.load_file(path, loading)
    assert loading.documents == len(bundle.objects) == loading.expected
    assert str(loading) == f"{loading.documents:,} of about {loading.expected:,} documents"


class _Writer:
    hasmarkup = False

    def __init__(self) -> None:
        self.out = io.StringIO()

    def write(self, text: str, flush: bool = False) -> None:
        self.out.write(text)


class _PluginManager:
    def getplugin(self, name: str):
        return None


class _Config:
    def __init__(self) -> None:
        self.writer = _Writer()
        self.pluginmanager = _PluginManager()

    def get_terminal_writer(self) -> _Writer:
        return self.writer


def test_a_large_input_shows_its_loading(tmp_path, monkeypatch, dev_bundle):
    """From LARGE_INPUT on, loading is announced and closed with its time (a heartbeat runs between)."""
    from conformance.plugin import inputs

    path = tmp_path / "big.yaml"
    path.write_text(dev_bundle.text)
    config = _Config()
    monkeypatch.setattr(inputs, "LARGE_INPUT", 1)
    bundle = inputs._load(config, "file", path)
    shown = config.writer.out.getvalue().splitlines()
    assert shown[0].startswith(f"loading {path} (")
    assert shown[-1].startswith(f"loading {path} (")
    assert ": done in " in shown[-1]
    assert len(bundle.objects) == len(dev_bundle.objects)

    monkeypatch.setattr(inputs, "LARGE_INPUT", 1 << 40)
    quiet = _Config()
    inputs._load(quiet, "file", path)
    assert quiet.writer.out.getvalue() == ""
