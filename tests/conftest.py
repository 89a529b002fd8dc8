"""Fixtures shared by the unit tests of the suite's own code."""

from __future__ import annotations

import pytest

from conformance.paths import OVERLAYS
from conformance.static.manifests import load_overlay


@pytest.fixture(scope="session")
def dev_bundle():
    """The dev overlay rendered with the pinned kubectl kustomize, once per session."""
    return load_overlay(OVERLAYS / "dev")
