"""The static findings at the lines to edit: in the failing check's message, the results and SARIF.

For a failing static check, each gap gets its origin (conformance.static.origins: the file under
base/ or overlays/ and the line, or the rendered file's document), computed then and only then.
The check's message shows it beside each gap shown in full; its result in results-<run>.json gets
`origins` ([{gap, path, line}]); and <report dir>/static.sarif (SARIF 2.1.0) holds every static gap
of the run as a result at that line, for code scanning to show on a pull request's changed lines.

The rendered manifests the rules see are never changed: the origins come from a rendering of their
own, and only for inputs with a failing check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.controls import CATALOGUE
from conformance.paths import REPO
from conformance.plugin.inputs import targets_checks
from conformance.plugin.state import STATE, control_of, tier_of
from conformance.static.gaps import fold
from conformance.static.manifests import Bundle
from conformance.static.origins import Origins

SARIF_NAME = "static.sarif"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
ORIGINS = pytest.StashKey[dict[str, Origins]]()
FINDINGS = pytest.StashKey[list[dict[str, Any]]]()


def _origins_of(config: pytest.Config, bundle: Bundle) -> Origins:
    """One Origins per input, made at its first failing check."""
    per_input = config.stash.setdefault(ORIGINS, {})
    if bundle.source not in per_input:
        per_input[bundle.source] = Origins(bundle.source)
    return per_input[bundle.source]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Before the report is made: the origins into the message; after: into the recorded result."""
    located: list[dict[str, Any]] = []
    exc = call.excinfo.value if call.when == "call" and call.excinfo is not None else None
    gaps = getattr(exc, "gaps", None)
    callspec = getattr(item, "callspec", None)
    bundle = callspec.params.get("bundle") if callspec else None
    if gaps and tier_of(item) == "static" and isinstance(bundle, Bundle):
        origins = _origins_of(item.config, bundle)
        where = {gap: origins.of(gap) for gap in dict.fromkeys(gaps)}
        exc.msg = "\n".join(fold(gaps, where=where.__getitem__))
        located = [{"gap": gap, "path": where[gap].path, "line": where[gap].line} for gap in gaps]
        control = control_of(item) or ""
        item.config.stash.setdefault(FINDINGS, []).extend(
            {"control": control, "test": item.nodeid, "input": bundle.name, **entry} for entry in located)
    report = yield
    if located:
        state = item.config.stash.get(STATE, None)
        recorded = next((r for r in state.results if r["test"] == item.nodeid), None) if state else None
        if recorded is not None:
            recorded["origins"] = located
    return report


def _uri(path: str) -> dict[str, str]:
    """A path relative to the repository against %SRCROOT% (what code scanning maps to the checkout)."""
    if Path(path).is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": path, "uriBaseId": "%SRCROOT%"}


def sarif(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: a rule per control, a result per gap at its origin."""
    used = sorted({f["control"] for f in findings})
    titles = {c.id: c for c in CATALOGUE}
    rules = []
    for control in used:
        entry: dict[str, Any] = {"id": control, "name": control.replace("-", "")}
        if control in titles:
            entry["shortDescription"] = {"text": titles[control].title}
            entry["fullDescription"] = {"text": titles[control].rationale or titles[control].title}
        rules.append(entry)
    index = {control: i for i, control in enumerate(used)}
    results = [{
        "ruleId": f["control"],
        "ruleIndex": index[f["control"]],
        "level": "error",
        "message": {"text": f["gap"]},
        "locations": [{"physicalLocation": {"artifactLocation": _uri(f["path"]),
                                            "region": {"startLine": f["line"]}}}],
        # One alert per gap and input across runs, wherever its line moves.
        "partialFingerprints": {"cortexGap/v1": f"{f['input']}|{f['gap']}"},
        "properties": {"test": f["test"], "input": f["input"]},
    } for f in findings]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "cortex-conformance", "rules": rules}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": REPO.as_uri() + "/"}},
            "results": results,
        }],
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """static.sarif beside the results, whenever static checks ran: empty when nothing failed."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or config.option.collectonly or not targets_checks(config):
        return
    if not any(r.get("tier") == "static" for r in state.results):
        return
    state.report_dir.mkdir(parents=True, exist_ok=True)
    (state.report_dir / SARIF_NAME).write_text(json.dumps(sarif(config.stash.get(FINDINGS, [])), indent=1) + "\n")
