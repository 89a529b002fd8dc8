"""The pinned versions of fixtures/versions.yaml, loaded once."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PINS_FILE = REPO / "fixtures" / "versions.yaml"
FIXTURES = REPO / "fixtures"
CACHE_ROOT = Path.home() / ".cache" / "cortex-conformance"


@cache
def load() -> dict[str, Any]:
    return yaml.safe_load(PINS_FILE.read_text())


@cache
def fixture(relative: str) -> Any:
    """A YAML data file under fixtures/, parsed once."""
    return yaml.safe_load((FIXTURES / relative).read_text())
