"""Which platform pairs Istio supports, and what the results and the report say about the one that ran."""

from __future__ import annotations

import json

import pytest

from conformance import fixtures
from conformance.errors import InputError
from conformance.live.environment import envoy_version
from conformance.report import html_page, markdown_summary


@pytest.fixture(autouse=True)
def _defaults():
    fixtures.select()
    yield
    fixtures.select()


def test_every_istio_release_names_the_kubernetes_minors_it_supports_and_where_that_comes_from():
    """The support table is data, with its source beside it; every listed minor is a minor, never a range."""
    raw = fixtures.versions()["istio"]
    assert "supportStatus.yml" in raw["support_source"]
    for release, spec in raw["releases"].items():
        minors = spec["kubernetes"]
        assert minors, release
        assert all(isinstance(m, str) and m.count(".") == 1 for m in minors), release
        assert minors == sorted(minors, key=lambda m: tuple(map(int, m.split(".")))), release


def test_the_default_pair_is_the_newest_supported_one():
    """The defaults every local run and the report's headline rest on are a pair Istio supports, and no
    pinned minor that the default release supports is newer."""
    minor, release = fixtures.selected()
    assert fixtures.select().supported
    supported = fixtures.versions()["istio"]["releases"][release]["kubernetes"]
    pinned = [m for m in fixtures.supported_minors() if m in supported]
    assert minor == max(pinned, key=lambda m: tuple(map(int, m.split("."))))


def test_an_unsupported_pinned_pair_runs_and_says_it_is_ahead_of_support():
    selection = fixtures.select(kubernetes="1.37")
    assert not selection.supported
    about = fixtures.pins()["about"]["support"]
    assert about["supported"] is False
    assert about["text"] == "ahead of support: Istio 1.31 supports Kubernetes 1.32-1.36, not 1.37"
    assert fixtures.support("1.36", "1.31")["text"] == "supported: Istio 1.31 supports Kubernetes 1.32-1.36"


def test_an_unpinned_version_is_still_refused_in_one_line():
    with pytest.raises(InputError, match=r"--kubernetes 1\.38: not a supported version"):
        fixtures.select(kubernetes="1.38")
    with pytest.raises(InputError, match=r"--istio 1\.32: not a supported version"):
        fixtures.select(istio="1.32")


def test_istio_pins_leave_out_what_only_describes_the_release():
    """Image caches and the platform's fingerprint hash pins()["istio"]: a note on support or on the release a
    commit corresponds to must never rebuild Istio's images or reinstall the platform."""
    istio = fixtures.pins()["istio"]
    assert not set(fixtures.DESCRIPTIVE) & set(istio)
    assert fixtures.pins()["about"]["istio_corresponds_to"].startswith("release-1.31 branch at eed52ebb66ad")


def test_envoy_version_is_read_from_server_info():
    info = json.dumps({"version": "0a12a02f0db52f6d229ec0fbe0f2091e1c02098b/1.39.3/Clean/RELEASE/BoringSSL"})
    assert envoy_version(info) == "1.39.3 (0a12a02f0db5, RELEASE)"
    assert envoy_version("not json") is None
    assert envoy_version(json.dumps({})) is None


ENVIRONMENT = {"image_source": "build", "kind": "v0.33.0", "kubernetes": "v1.37.2", "kubernetes_minor": "1.37",
               "support": "ahead of support: Istio 1.31 supports Kubernetes 1.32-1.36, not 1.37", "supported": False,
               "node_image_digest": "sha256:ab12", "istio": "1.31",
               "istio_version": "istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad (images 1.31-2026-08-27)",
               "istio_release": "release-1.31 branch at eed52ebb66ad (2026-08-27), between 1.31.0 and 1.31.1",
               "envoy": "1.39.3 (0a12a02f0db5, RELEASE)", "vault": "OpenBao 2.7.2 (dev)",
               "collector": "Jaeger v2.13.0", "images": []}


def test_the_markdown_summary_names_what_ran_and_flags_a_pair_ahead_of_support():
    line = markdown_summary._platform({"environment": ENVIRONMENT})[0]
    assert line.startswith("**Platform** ⚠️ **ahead of support**")
    for value in ("v1.37.2", "between 1.31.0 and 1.31.1", "eed52ebb66ad", "Envoy 1.39.3", "kind v0.33.0",
                  "sha256:ab12", "OpenBao 2.7.2", "Jaeger v2.13.0"):
        assert value in line
    supported = markdown_summary._platform({"environment": {**ENVIRONMENT, "supported": True,
                                                            "support": "supported: Istio 1.31 supports ..."}})[0]
    assert "ahead of support" not in supported
    assert markdown_summary._platform({"environment": {}}) == []


def test_the_html_environment_section_shows_each_version_and_the_support():
    page = html_page._environment({"environment": dict(ENVIRONMENT)})
    assert "<strong>ahead of support: Istio 1.31 supports Kubernetes 1.32-1.36, not 1.37</strong>" in page
    for label in ("Envoy", "node image digest", "Istio release it corresponds to", "trace collector"):
        assert f"<th>{label}</th>" in page
    assert ">False<" not in page  # `supported` is said in words, once
