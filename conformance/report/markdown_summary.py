"""The sign-off report as a short Markdown summary, for a CI job summary or a pull-request comment.

It carries what someone needs in the first ten seconds: the verdict, what failed and where the
full page is. Everything else stays in the HTML, which the summary points to.
"""

from __future__ import annotations

from typing import Any

from conformance.report import outcomes

_ICON = {"pass": "✅", "fail": "❌", "incomplete": "⚠️"}


def _cell(value: Any) -> str:
    # Table cells hold one line; a pipe would end the cell and a backtick could open code.
    text = "—" if value is None else str(value)
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def render(doc: dict[str, Any], *, html_link: str) -> str:
    """The Markdown summary of a report document; ``html_link`` is where the full page lives."""
    counts = doc["summary"]["by_status"]
    git = doc["git"]
    commit = f"`{git['commit'][:12]}`" if git.get("commit") else "unknown"
    dirty = {True: " (dirty working tree)", False: "", None: " (dirty state unknown)"}[git.get("dirty")]
    lines = [
        f"## cortex-api conformance: {_ICON[doc['verdict']]} {doc['verdict'].upper()}",
        "",
        f"**Date** {doc['date']} · **Commit** {commit}{dirty} · "
        f"**Tiers run** {' and '.join(doc['scope']) or 'none'}",
        "",
        f"{counts['failed']} failed, {counts['error']} error, {counts['skipped']} skipped, "
        f"{counts[outcomes.NOT_RUN]} not run, {counts['passed']} passed "
        f"of {doc['summary']['controls']} controls.",
        "",
        *(f"- {_cell(r)}" for r in doc["verdict_reasons"]),
        *(f"- ⚠️ {_cell(w)}" for w in doc["warnings"]),
    ]

    failing = [c for c in doc["controls"] if c["status"] in outcomes.FAILING]
    if failing:
        first = {}
        for f in doc["failures"]:
            first.setdefault(f.get("control") or outcomes.NO_CONTROL, _first_line(f.get("message")))
        lines += ["", "### Failed controls", "", "| Control | Title | Static | Live | First failure |",
                  "|---|---|---|---|---|"]
        lines += [f"| `{c['id']}` | {_cell(c['title'])} | {c['static']['result']} | {c['live']['result']} "
                  f"| {_cell(first.get(c['id'], ''))} |" for c in failing]

    mismatched = [m for m in doc["matrices"] if m["mismatches"]]
    if mismatched:
        lines += ["", "### Matrix mismatches", ""]
        for m in mismatched:
            cells = [c for c in m["cells"] if c["match"] is False]
            shown = "; ".join(", ".join(_cell(c.get(k)) for k in m["columns"])
                              + f": expected {_cell(outcomes.matrix_value(c['expected']))}, "
                              f"observed {_cell(outcomes.matrix_value(c['observed']))}"
                              for c in cells[:10])
            more = f" (and {len(cells) - 10} more)" if len(cells) > 10 else ""
            lines.append(f"- **{_cell(m['name'])}** ({m['tier']}, {_cell(m['input'])}): {shown}{more}")

    comp = doc["comparison"]
    if comp:
        lines += ["", f"### Since {_cell(comp['against'])} ({_cell(comp['against_verdict'])}, "
                      f"{_cell(comp['against_date'])})", ""]
        for key, title in (("newly_failing", "Newly failing"), ("fixed", "Fixed"),
                           ("added", "Added"), ("removed", "Removed")):
            ids = ", ".join(f"`{item['id']}`" for item in comp[key]) or "none"
            lines.append(f"- {title}: {ids}")
        if comp["inputs_changed"]:
            changed = ", ".join(f"`{i['name']}`" for i in comp["inputs_changed"])
            lines.append(f"- Manifests changed: {changed}")

    lines += ["", f"Full report: [report.html]({html_link})", ""]
    return "\n".join(lines)
