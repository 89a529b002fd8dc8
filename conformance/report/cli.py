"""``python -m conformance.report``: build the sign-off report from a results directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.errors import ConformanceError
from conformance.report import outcomes, write_report

# The suite's own default, so that `nox -s static` then `nox -s report` meet in one place
# whatever the working directory.
DEFAULT_REPORT_DIR = Path(__file__).resolve().parents[2] / "build" / "reports"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.report",
        description="Write report.html, report.md and report.json from the results-*.json in a "
                    "report directory.")
    parser.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR,
                        help="where the suite wrote its results, and where the report goes "
                             "(default: build/reports)")
    parser.add_argument("--compare", type=Path, metavar="OLD.json",
                        help="an earlier report.json: list newly failing, fixed, added and removed controls")
    parser.add_argument("--html-link", default="report.html", metavar="URL",
                        help="where the Markdown summary says the HTML report is, for example the CI "
                             "run's artifact page (default: report.html)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        doc = write_report(args.report_dir, compare_with=args.compare, html_link=args.html_link)
    except ConformanceError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"report: cannot write to {args.report_dir}: {exc.strerror}", file=sys.stderr)
        return 1
    counts = doc["summary"]["by_status"]
    print(f"report: {doc['verdict'].upper()} ({counts['failed']} failed, {counts['error']} error, "
          f"{counts['skipped']} skipped, {counts[outcomes.NOT_RUN]} not run, {counts['passed']} passed) "
          f"-> {args.report_dir / 'report.html'}")
    return 0
