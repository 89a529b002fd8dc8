"""What the suite downloads outside the image build: the pinned Istio CRD schemas.

The static tier validates offline; this module is the only part of it that reaches the network,
once, from the Go module proxy, into the cache (sha256 pinned in fixtures/versions.yaml). The nox
sessions run it before the static tier: `python -m conformance.downloads schemas`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from conformance import fixtures
from conformance.errors import InputError, PreflightError
from conformance.static.schema import CRD_FILE, crd_schemas, istio_api_pin, istio_cache_file


def _module_proxy() -> str:
    for entry in re.split(r"[,|]", os.environ.get("GOPROXY", "")):
        if entry.startswith(("https://", "http://")):
            return entry.rstrip("/")
    return "https://proxy.golang.org"


def _escape_module(module: str) -> str:
    # The module proxy protocol spells upper-case letters as !lower-case.
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), module)


def fetch_istio(force: bool = False) -> Path:
    """Download the pinned istio.io/api module, verify it and cache its CRDs as strict schemas."""
    target = istio_cache_file()
    if target.exists() and not force:
        return target
    module, version, expected = istio_api_pin()
    url = f"{_module_proxy()}/{_escape_module(module)}/@v/{version}.zip"
    try:
        with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - pinned https URL
            payload = response.read()
    except (urllib.error.URLError, TimeoutError) as exc:
        raise PreflightError(f"cannot download Istio CRD schemas from {url}: {exc}") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise PreflightError(f"{url} has sha256 {actual}, but fixtures/versions.yaml pins {expected}")
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        crds = archive.read(f"{module}@{version}/{CRD_FILE}").decode()
    schemas = {key: schema for key, schema in crd_schemas(crds)}
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as handle:
        json.dump(schemas, handle)
    os.replace(handle.name, target)
    return target



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.downloads",
                                     description="Install the Istio CRD schemas of every supported release.")
    parser.add_argument("command", choices=["schemas"], help="the pinned Istio CRD schemas")
    parser.add_argument("--force", action="store_true", help="download again even if cached")
    args = parser.parse_args(argv)
    try:
        # Every supported release's, so that `--istio RELEASE` works offline later.
        for release in fixtures.supported_istio():
            fixtures.select(istio=release)
            print(f"Istio {release} CRD schemas: {fetch_istio(force=args.force)}")
    except (PreflightError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        fixtures.select()
    return 0


if __name__ == "__main__":
    sys.exit(main())
