"""Span trees and metric names in live evidence, on the page and in the summary."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest

from conformance.report import html_evidence, spans, write_report


def _span(span_id: str, parent: str | None, service: str, name: str, **extra) -> dict:
    return {"span_id": span_id, "parent_span_id": parent, "service": service, "name": name, **extra}


TRACE = [
    _span("c", "b", "cortex-api", "inbound /v1/chat", kind="server", status_code=200,
          attributes={"response_flags": "-", "http.method": "POST"}),
    _span("a", None, "gateway", "/v1/chat", kind="server", status_code=200),
    _span("b", "a", "gateway", "outbound cortex-api", kind="client"),
    _span("d", "a", "gateway", "ext-authz"),
]


def test_tree_follows_parent_links_whatever_the_recorded_order():
    """Parents come before children, depth by parent link; siblings keep their recorded order."""
    assert [(depth, s["span_id"]) for depth, s in spans.walk(TRACE)] == [(0, "a"), (1, "b"), (2, "c"), (1, "d")]


def test_span_with_an_unrecorded_parent_is_kept_as_a_root():
    """A span whose parent was not collected is shown, not dropped."""
    tree = spans.walk([_span("x", "missing", "svc", "n"), _span("y", None, "svc", "m")])
    assert [(d, s["span_id"]) for d, s in tree] == [(0, "x"), (0, "y")]


def test_a_loop_of_parent_links_neither_hangs_nor_drops_spans():
    """Spans whose parents point at each other are shown once each."""
    tree = spans.walk([_span("p", "q", "svc", "n"), _span("q", "p", "svc", "m"), "not a span"])
    assert sorted(s["span_id"] for _, s in tree) == ["p", "q"]


def test_key_attributes_come_first_and_the_rest_is_counted():
    """Method, status and upstream lead; beyond six attributes the line says how many were left out."""
    attrs = {f"z{i}": str(i) for i in range(6)} | {"http.method": "GET", "upstream_cluster": "outbound|8080||api"}
    shown, more = spans.attributes({"attributes": attrs})
    assert [k for k, _ in shown] == ["http.method", "upstream_cluster", "z0", "z1", "z2", "z3"]
    assert more == 2


def test_text_tree_is_indented_for_a_fenced_block():
    """The Markdown form is one line per span, indented under its parent."""
    assert spans.text_tree(TRACE).splitlines() == [
        "gateway  /v1/chat  (server, 200)",
        "└─ gateway  outbound cortex-api  (client)",
        "   └─ cortex-api  inbound /v1/chat  (server, 200)  http.method=POST  response_flags=-",
        "└─ gateway  ext-authz",
    ]


class _Nesting(html.parser.HTMLParser):
    """Depth of each list item, to check that the nested lists really nest."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.items, self.open = 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "ul":
            self.depth += 1
        if tag == "li":
            self.open.append(self.depth)

    def handle_endtag(self, tag):
        self.depth -= tag == "ul"

    def handle_data(self, data):
        if self.open and data.strip() and data.strip() in {"gateway", "cortex-api"}:
            self.items.append((self.depth, data.strip()))


def test_html_tree_nests_lists_by_parent_link():
    """On the page a child's list sits inside its parent's item, and every tag is closed."""
    markup = html_evidence.span_tree(TRACE)
    parser = _Nesting()
    parser.feed(markup)
    assert parser.items == [(1, "gateway"), (2, "gateway"), (3, "cortex-api"), (2, "gateway")]
    assert parser.depth == 0
    assert markup.count("<li>") == markup.count("</li>") == 4


def test_metrics_are_a_compact_list():
    """Metric names show as one line of code spans under the heading Metrics."""
    markup = html_evidence.telemetry({"metrics": ["istio_requests_total", "istio_tcp_connections_opened_total"]})
    assert markup == ('<p class="metrics"><b>Metrics</b> <code>istio_requests_total</code> '
                      "<code>istio_tcp_connections_opened_total</code></p>")


def _results_file(out: Path, results: list[dict]) -> None:
    out.mkdir()
    (out / "results-conformance.json").write_text(json.dumps({
        "schema": "cortex-conformance/results", "schema_version": 1, "run": "conformance",
        "started_at": "2026-11-25T21:00:00Z", "finished_at": "2026-11-25T21:14:30Z",
        "git": {"commit": "a" * 40, "dirty": False}, "results": results}))


@pytest.fixture
def tel_report(tmp_path) -> Path:
    """A report with one passed traced request (TEL-01's live half)."""
    evidence = [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_tree": TRACE,
                 "metrics": ["istio_requests_total"]}]
    out = tmp_path / "reports"
    _results_file(out, [{"test": "live/test_tel.py::test_trace[dev]", "control": "TEL-01", "tier": "live",
                         "outcome": "passed", "message": "", "evidence": evidence},
                        {"test": "live/test_gw.py::test_gw[dev]", "control": "GW-01", "tier": "live",
                         "outcome": "passed", "message": "", "evidence": [{"command": "curl", "status": 200}]}])
    write_report(out)
    return out


def test_passed_trace_is_on_the_page_collapsed(tel_report):
    """A passed check's span tree is shown in its own section, closed until opened; plain passes are not."""
    page = (tel_report / "report.html").read_text()
    section = page[page.index('<h2 id="telemetry">'):page.index('<h2 id="skipped">')]
    summary = '<details class="telemetry"><summary><span class="badge b-passed">passed</span> <code>TEL-01</code>'
    assert summary in section
    assert "<details open" not in section
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in section
    assert "istio_requests_total" in section
    assert "test_gw" not in section
    assert '<a href="#telemetry">Traces</a>' in page


def test_new_family_shows_with_its_title(tel_report):
    """The TEL family's title comes from the catalogue, with no list of families to update; its static half
    did not run here, so the control is not run, not passed."""
    row = next(c for c in json.loads((tel_report / "report.json").read_text())["controls"] if c["id"] == "TEL-01")
    assert (row["family_title"], row["status"], row["in_catalogue"]) == ("Telemetry", "not run", True)
    assert "<td>Telemetry</td>" in (tel_report / "report.html").read_text()


def test_passed_trace_is_in_the_summary_as_a_fenced_block(tel_report):
    """The summary shows the span tree as indented text inside a collapsed block."""
    summary = (tel_report / "report.md").read_text()
    assert "<details><summary>TEL-01 passed · live/test_tel.py::test_trace[dev]</summary>" in summary
    block = summary[summary.index("```text\n") + 8:]
    assert block.startswith("gateway  /v1/chat  (server, 200)\n└─ gateway  outbound cortex-api  (client)\n")
    assert "Metrics: `istio_requests_total`" in summary
