"""The sign-off report: the results of the last static and live runs, as HTML, Markdown and JSON.

``write_report(report_dir)`` reads every ``results-*.json`` the suite left in ``report_dir``, and
``faults.json`` when the live fault catalogue left one, and writes ``report.html``, ``report.md``
and ``report.json`` beside them. The command line is
``python -m conformance.report --report-dir DIR [--compare OLD.json]``.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError
from conformance.report import compare, document, evidence, faults, html_page, markdown_summary
from conformance.report.redact import find_secrets
from conformance.report.results import load_runs

OUTPUTS = ("report.html", "report.md", "report.json")


def _write(path: Path, text: str) -> None:
    # Readers (a CI upload, a browser) never see a half-written report.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(report_dir: Path, *, compare_with: Path | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """The report document for the results in ``report_dir``, without writing anything."""
    old = compare.load_report(compare_with) if compare_with else None
    runs = load_runs(report_dir)
    catalogue = faults.load(report_dir)
    evidence.check_one_run(runs, catalogue)
    doc = document.build(runs, generated_at=now or datetime.now(UTC), faults=catalogue)
    if old is not None:
        doc["comparison"] = compare.compare(doc, old, old_path=str(compare_with))
    return doc


def render_all(doc: dict[str, Any], *, html_link: str = "report.html") -> dict[str, str]:
    """The three files' contents; refuses if any still holds something that looks like a credential."""
    files = {
        "report.html": html_page.render(doc),
        "report.md": markdown_summary.render(doc, html_link=html_link),
        "report.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
    }
    for name, text in files.items():
        leaked = find_secrets(text)
        if leaked:
            raise ConformanceError(f"refusing to write {name}: it still holds {', '.join(leaked)} "
                                   "after redaction (a bug in conformance/report/redact.py)")
    return files


def write_report(report_dir: Path, *, compare_with: Path | None = None,
                 html_link: str = "report.html", now: datetime | None = None) -> dict[str, Any]:
    """Build the report for ``report_dir`` and write its three files there; returns the document."""
    doc = build_report(report_dir, compare_with=compare_with, now=now)
    for name, text in render_all(doc, html_link=html_link).items():
        _write(report_dir / name, text)
    return doc
