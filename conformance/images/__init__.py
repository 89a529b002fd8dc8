"""Hermetic images: every image the live tier needs, built from package registries only.

Every module of this package named ``*_stages`` registers its stages when the package is
imported, so a new builder (Istio's) adds a module and edits nothing else. stage.run builds or
reuses stages; the CLI is ``python -m conformance.images``; the API other builders use is
described in docs/hermetic-interfaces.md.
"""

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _module.name.endswith("_stages"):
        importlib.import_module(f"{__name__}.{_module.name}")
