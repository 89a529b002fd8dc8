"""The pytest plugin of the suite (`-p conformance.plugin`), one module per concern.

- options: the command-line options, checked once into one line of error each;
- inputs: what is checked (overlays, rendered files) and the `bundle` parametrization;
- order: every check names a known control and a tier; static first, disruptive live checks last;
- results: each check's outcome, message and evidence, written to results-<run>.json;
- summary: the per-control lines at the end of the run;
- sarif: a failing static check's gaps at their source lines, in its message, its result and static.sarif.

Checks import `holds` from here to fail with their gaps.
"""

from conformance.plugin.inputs import pytest_generate_tests, pytest_sessionstart
from conformance.plugin.options import pytest_addoption, pytest_configure
from conformance.plugin.order import pytest_collection_modifyitems
from conformance.plugin.results import (
    evidence,
    holds,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    record_matrix,
    run_state,
)
from conformance.plugin.summary import pytest_terminal_summary

# A plugin of its own: it wraps the same report hook as results, around it.
pytest_plugins = ["conformance.plugin.sarif"]

__all__ = [
    "evidence",
    "holds",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "pytest_terminal_summary",
    "record_matrix",
    "run_state",
]
