"""Where things are: the repository's folders, the build outputs and the one cache root.

Every module that needs a path takes it from here, so a moved folder is a one-line change and
`CORTEX_CONFORMANCE_CACHE` moves every cache (built images, tools, schemas, clusters) at once.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
EXPECTATIONS = FIXTURES / "expectations"
OVERLAYS = REPO / "overlays"
STANDIN = REPO / "standin"
CHECKS = REPO / "conformance" / "checks"
BUILD = REPO / "build"
REPORTS = BUILD / "reports"


def cache_root() -> Path:
    """The cache of everything built or downloaded outside the repository (CORTEX_CONFORMANCE_CACHE)."""
    configured = os.environ.get("CORTEX_CONFORMANCE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cortex-conformance"
