"""The sign-off report built from recorded results: verdict, order, matrices, evidence, redaction.

tests/data/report holds a static run, a later conformance run with passes, failures, an error,
skips, both matrices with mismatches, unprobed cells and traced requests, and the record of a
fault catalogue that missed a fault. Where a live check would have quoted a
credential, the recording holds a placeholder; this module plants freshly generated secrets
there (a signed JWT, an ``alg: none`` token, Vault tokens, a PEM private key, provider keys),
so no real-looking secret is ever committed and none can survive by luck of its shape.
"""

from __future__ import annotations

import html.parser
import json
import secrets
import shutil
import string
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.controls import CATALOGUE
from conformance.errors import ConformanceError
from conformance.report import render_all, write_report

DATA = Path(__file__).parent / "data" / "report"
SCHEMA = Path(__file__).parents[1] / "conformance" / "report" / "report.schema.json"
NOW = datetime(2026, 11, 25, 22, 0, 0, tzinfo=UTC)
OUTPUTS = ("report.html", "report.md", "report.json")


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _plant_secrets() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    alnum = string.ascii_letters + string.digits
    return {
        "JWT": jwt.encode({"iss": "https://issuer.conformance.test", "aud": "cortex-api", "exp": 1},
                          key, algorithm="RS256"),
        "ALG_NONE": jwt.encode({"iss": "https://issuer.conformance.test"}, None, algorithm="none"),
        "PEM": pem,
        "HVS": "hvs." + secrets.token_urlsafe(66),
        "LEGACY_VAULT_TOKEN": "s." + _random(alnum, 24),
        "GITHUB_TOKEN": "ghp_" + _random(alnum, 36),
        "OPENAI_KEY": "sk-proj-" + secrets.token_urlsafe(36),
    }


def _fill(value, planted: dict[str, str]):
    if isinstance(value, str):
        for name, secret in planted.items():
            value = value.replace("{{" + name + "}}", secret)
        return value
    if isinstance(value, list):
        return [_fill(v, planted) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, planted) for k, v in value.items()}
    return value


def _fragments(name: str, secret: str) -> list[str]:
    """The secret and the parts of it that would still be a leak on their own."""
    parts = [secret]
    if name in ("JWT", "ALG_NONE"):
        # The header segment of a JWT is the same for every token of its algorithm; the payload
        # and signature are what identify this one.
        parts += [p for p in secret.split(".")[1:] if p]
    if name == "PEM":
        body = [line for line in secret.splitlines() if line and "-----" not in line]
        parts += body[1:-1]
    return parts


@pytest.fixture(scope="module")
def planted() -> dict[str, str]:
    return _plant_secrets()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, planted) -> Path:
    out = tmp_path_factory.mktemp("report")
    for path in DATA.iterdir():
        if path.suffix == ".json":
            data = _fill(json.loads(path.read_text()), planted)
            (out / path.name).write_text(json.dumps(data, indent=2))
        else:
            shutil.copy(path, out / path.name)
    write_report(out, now=NOW)
    return out


@pytest.fixture(scope="module")
def doc(report_dir) -> dict:
    return json.loads((report_dir / "report.json").read_text())


@pytest.fixture(scope="module")
def page(report_dir) -> str:
    return (report_dir / "report.html").read_text()


@pytest.fixture(scope="module")
def summary(report_dir) -> str:
    return (report_dir / "report.md").read_text()


def _control(doc: dict, cid: str) -> dict:
    return next(c for c in doc["controls"] if c["id"] == cid)


class _Text(html.parser.HTMLParser):
    """The text a reader sees (the body, not the title or the style sheet), and every tag."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._hidden += tag in ("head", "style", "title", "script")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("head", "style", "title", "script")

    def handle_data(self, data):
        if not self._hidden:
            self.chunks.append(data)


def _text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return " ".join(" ".join(parser.chunks).split())


# --- the verdict and the control table ---------------------------------------------------------

def test_verdict_is_fail_with_reasons(doc):
    """A failed control and two matrix mismatches make the verdict fail, and each is named."""
    assert doc["verdict"] == "fail"
    assert doc["verdict_reasons"] == [
        "5 control(s) failed", "1 control(s) could not be checked (error)",
        "network matrix (static, dev): 1 mismatch(es)", "jwt matrix (live, dev): 1 mismatch(es)",
        "the live tier could not prove it can fail: 1 of 4 fault(s) not killed: vault-role-wildcard "
        "(missed VAULT-03)"]
    assert (doc["headline"], doc["coverage"]) == ("FAIL", "static+live")


def test_every_catalogue_control_appears_once(doc):
    """No control is dropped: the table holds the whole catalogue, each once."""
    assert sorted(c["id"] for c in doc["controls"]) == sorted(c.id for c in CATALOGUE)


def test_failed_controls_come_first(doc):
    """Failed controls lead the table, then errors, skipped, not run, and passed last."""
    statuses = [c["status"] for c in doc["controls"]]
    order = ["failed", "error", "skipped", "not run", "passed"]
    assert statuses == sorted(statuses, key=order.index)
    assert [c["id"] for c in doc["controls"][:5]] == ["SEC-02", "JWT-01", "NET-02", "VAULT-01", "VAULT-02"]


def test_tier_result_is_the_worst_outcome_and_agreement_compares_tiers(doc):
    """SEC-02 fails statically and passes live, so the tiers are marked as disagreeing."""
    row = _control(doc, "SEC-02")
    assert (row["static"]["result"], row["live"]["result"], row["agree"]) == ("failed", "passed", False)
    assert "readOnlyRootFilesystem" in row["static"]["reason"]


def test_newer_run_wins_for_the_same_test(doc):
    """AVAIL-01 failed in the earlier static run and passed in the later conformance run: passed."""
    row = _control(doc, "AVAIL-01")
    assert row["static"]["result"] == "passed"
    assert row["static"]["tests"] == ["conformance/checks/static/test_avail.py::test_avail_01[dev]"]


def test_tier_without_a_check_is_not_run_with_reason(doc):
    """SEC-04 has a live check in the catalogue but none ran: shown as not run, with the reason."""
    row = _control(doc, "SEC-04")
    assert row["live"] == {"result": "not run", "reason": "no check ran for this tier", "tests": []}
    assert row["status"] == "not run"


def test_tier_the_catalogue_lacks_is_not_applicable(doc):
    """VAULT-01 is static only, so its live cell says n/a rather than not run."""
    assert _control(doc, "VAULT-01")["live"]["result"] == "n/a"


def test_skipped_control_keeps_its_reason(doc):
    """A skip is visible as such, with the reason the check gave."""
    row = _control(doc, "HPA-03")
    assert (row["status"], row["live"]["result"]) == ("skipped", "skipped")
    assert row["live"]["reason"] == "--nodes 1: the load test needs two workers to host the added pods"


def test_error_is_not_a_pass(doc):
    """A check that could not decide (error) ranks with the failures, not the passes."""
    assert _control(doc, "PROBE-03")["status"] == "error"


def test_dirty_flag_is_true_when_any_run_was_dirty(doc):
    """The conformance run was made from a dirty tree, so the report says dirty."""
    assert doc["git"] == {"commit": "3f9c2a7d5e1b4c6a8f0e2d4b6a8c0e2f4a6b8d0c", "dirty": True,
                          "commits": ["3f9c2a7d5e1b4c6a8f0e2d4b6a8c0e2f4a6b8d0c"]}


# --- matrices -----------------------------------------------------------------------------------

def test_matrix_mismatches_are_counted(doc):
    """Each matrix counts its mismatches, its unprobed cells and the cells left to the static tier."""
    got = {(m["name"], m["tier"]): (m["mismatches"], m["unprobed"], m["deferred"]) for m in doc["matrices"]}
    assert got == {("network", "static"): (1, 0, 0), ("network", "live"): (0, 1, 2), ("jwt", "live"): (1, 0, 0)}


def test_network_matrices_are_grids_with_the_mismatch_standing_out(page):
    """Both network matrices are grids; the mismatched flow is a red cell and listed under its grid."""
    assert page.count('<table class="grid">') == 2
    cell = page[page.index('<td class="g-allowed-unexpected">'):]
    cell = cell[:cell.index("</td>")]
    assert '<span class="flow f-allowed-unexpected"' in cell
    assert "9121/TCP" in cell
    assert "ALLOWED, NOT EXPECTED ✗" in cell
    assert "prometheus → cortex-api 9121/TCP</b>: ALLOWED, NOT EXPECTED" in page
    assert "Network grid legend" in page


def test_unprobed_and_deferred_cells_are_shown_apart(page):
    """A cell no probe reached is marked not probed; one left to the static tier says so, with its note."""
    text = _text(page)
    assert "cortex-dev-other → cortex-api 8080/TCP : not probed (no Ready client pod in cortex-dev-other)" in text
    assert ("cortex-api → internet 443/TCP : static tier decides: no public address answers from inside "
            "this cluster") in text
    assert page.count('class="flow f-static-decides"') == 2 + 1  # two cells and the legend


def test_jwt_mismatch_is_a_marked_row(page):
    """The JWT matrix stays a list of cases, the mismatched case a row marked MISMATCH."""
    rows = [r for r in page.split("<tr") if 'class="mismatch"' in r]
    assert len(rows) == 1
    assert [s for s in ("expired", ">401<", ">200<", "MISMATCH") if s not in rows[0]] == []


# --- what the page shows ----------------------------------------------------------------------------

@pytest.mark.parametrize("expected", [
    "Verdict: FAIL", "2026-11-25T21:14:30Z", "3f9c2a7d5e1b", "working tree dirty",
    "v1.34.0", "openbao 2.7.2 (dev mode)", "v0.8.0", "kube-router v2.6.1",
    "sha256:1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718293a4b5c6d7e8f9012",
    "9a1f0c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a",
], ids=["verdict", "date", "commit", "dirty", "kubernetes", "vault", "metrics-server", "cni",
         "image-digest", "input-sha256"])
def test_page_states_the_facts_a_sign_off_needs(page, expected):
    """The verdict, date, commit, dirty flag, environment, image digests and input sha256 are on the page."""
    assert expected in _text(page)


def test_page_shows_failure_evidence(page):
    """A failure shows its message, the probe command, the HTTP status, exit code and headers."""
    text = _text(page)
    assert "case expired: expected 401 from the ingress gateway, got 200" in text
    assert "curl -sk -o /dev/null" in text
    assert "x-envoy-upstream-service-time: 12" in text
    assert "Probe command HTTP status Exit code Response headers Note" in text


def test_page_shows_phase_timings(page):
    """Every phase of each run is timed, with a total per run."""
    text = _text(page)
    for phase, seconds in (("render", "0.91"), ("cluster", "148.30"), ("install", "231.70"),
                           ("apply", "64.20"), ("live", "418.90")):
        assert f"conformance {phase} {seconds}" in text
    assert "conformance total 867.31" in text


def test_each_control_shows_its_rationale(page, doc):
    """The rationale, in report.json only before, sits under each control's title."""
    for control in CATALOGUE:
        assert f'<span class="rationale">{html.escape(control.rationale, quote=True)}</span>' in page, control.id
    assert _control(doc, "JWT-02")["rationale"].startswith("RequestAuthentication alone")


def test_failure_evidence_shows_its_span_tree(page, summary):
    """A failed check's trace is an indented tree on the page and a fenced block in the summary."""
    failure = page[page.index("conformance/checks/live/test_jwt.py::test_jwt_01[dev]"):]
    failure = failure[:failure.index("</article>")]
    assert '<div class="span-tree"><ul><li><span class="svc">istio-ingressgateway.istio-ingress</span>' in failure
    assert "<ul><li><span class=\"svc\">cortex-api.cortex-dev</span>" in failure
    assert "request.header.authorization=[REDACTED:authorization]" in failure
    assert "└─ cortex-api.cortex-dev  cortex-api.cortex-dev.svc.cluster.local:8080/v1/chat  (server, 200)" in summary


def test_fault_catalogue_is_reported(doc, page, summary):
    """faults.json reaches all three files; a catalogue with a missed fault is no sign-off."""
    assert (doc["faults"]["killed"], doc["faults"]["total"]) == (3, 4)
    assert doc["level"] == "live"
    assert "the fault catalogue did not prove the live tier can fail" in doc["short_of_signoff"]
    assert "### Fault catalogue: 3/4 killed" in summary
    assert '<tr class="missed"><td><b>vault-role-wildcard</b>' in page
    assert "Faults 3 of 4 killed" in _text(page)


def test_page_lists_skipped_and_not_run(page):
    """Skipped checks and tiers that did not run are listed with their reasons."""
    text = _text(page)
    assert "single-node cluster: a drain would evict every replica" in text
    assert "SEC-04 live not run no check ran for this tier" in text


def test_page_is_self_contained(page):
    """The page loads nothing: no script, stylesheet link, image, frame, font or remote URL."""
    parser = _Text()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "video", "audio"}
    hrefs = [attrs.get("href", "") for _, attrs in parser.tags if "href" in attrs]
    assert all(h.startswith("#") for h in hrefs), hrefs
    head = page.split("<body>")[0]
    assert [s for s in ("url(", "@import", "http://", "https://") if s in head] == []


# --- Markdown and JSON ------------------------------------------------------------------------------

def test_markdown_has_verdict_failed_controls_and_link(summary):
    """The CI summary gives the verdict, a row per failed control and the path to the HTML."""
    assert summary.startswith("## cortex-api conformance: ❌ FAIL\n")
    for cid in ("SEC-02", "JWT-01", "NET-02", "VAULT-01", "VAULT-02", "PROBE-03"):
        assert f"| `{cid}` |" in summary
    assert "[report.html](report.html)" in summary


def test_markdown_lists_matrix_mismatches(summary):
    """The summary names each mismatched matrix cell with expected and observed values."""
    network = ("- **network** (static, dev): prometheus, cortex-api, 9121/TCP: "
               "expected blocked, observed allowed")
    assert network in summary
    assert "- **jwt** (live, dev): expired: expected 401, observed 200" in summary


def test_json_matches_its_documented_schema(doc):
    """report.json validates against report.schema.json, schema version 1."""
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert (doc["schema"], doc["schema_version"]) == ("cortex-conformance/report", 1)


# --- redaction ------------------------------------------------------------------------------------

@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("name", ["JWT", "ALG_NONE", "PEM", "HVS", "LEGACY_VAULT_TOKEN", "GITHUB_TOKEN",
                                  "OPENAI_KEY"])
def test_planted_secret_does_not_survive(report_dir, planted, output, name):
    """No planted secret, nor an identifying piece of one, is in report.html, report.md or report.json."""
    text = (report_dir / output).read_text()
    leaked = [f for f in _fragments(name, planted[name]) if f in text]
    assert not leaked, f"{output} still holds part of the planted {name}"


def test_planted_secrets_were_present_before_redaction(report_dir, planted):
    """The recorded results did carry every planted secret, so the redaction test is not vacuous."""
    raw = "".join(p.read_text() for p in [*report_dir.glob("results-*.json"), report_dir / "faults.json"])
    for name, secret in planted.items():
        assert json.dumps(secret)[1:-1] in raw, name


def test_scan_after_rendering_stops_a_missed_secret(doc, planted):
    """A secret that got past redaction (here put in after it) stops the report from being rendered."""
    leaky = json.loads(json.dumps(doc))
    leaky["failures"][0]["message"] = f"token {planted['JWT']}"
    with pytest.raises(ConformanceError, match=r"^refusing to write report\.html: it still holds jwt after"):
        render_all(leaky)


def test_redaction_keeps_what_was_sent(page):
    """Redaction keeps the header name and scheme, so the evidence still says what was sent."""
    text = _text(page)
    assert "-H 'Authorization: Bearer [REDACTED:jwt]'" in text
    assert "X-Vault-Token: [REDACTED:vault-token]" in text
    assert "[REDACTED:private-key]" in text


# --- a real browser -------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return chromium


def _dump_dom(page: Path, profile: Path) -> str:
    result = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# Appended to a copy of the page only: the report itself holds no script. It measures what a
# reader sees (layout and computed style), which the DOM alone cannot say.
_PROBE = """<script>
const seen = {};
for (const [name, selector] of Object.entries(%s)) {
  const node = document.querySelector(selector);
  if (!node) { seen[name] = null; continue; }
  const box = node.getBoundingClientRect(), style = getComputedStyle(node);
  seen[name] = {width: box.width, height: box.height, visibility: style.visibility, display: style.display,
                background: style.backgroundColor, color: style.color, weight: style.fontWeight,
                text: node.textContent};
}
const out = document.createElement("pre"); out.id = "probe"; out.textContent = JSON.stringify(seen);
document.body.appendChild(out);
</script>"""


def _computed(page: Path, tmp_path: Path, selectors: dict[str, str]) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE % json.dumps(selectors) + "</body>"))
    dom = _dump_dom(probed, tmp_path / "profile")
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    return json.loads(html.unescape(dom[start:dom.index("</pre>", start)]))


def test_page_renders_in_chromium(report_dir, planted, tmp_path):
    """Headless Chromium renders a failing report: verdict first, failed before passed, grids, no secret."""
    dom = _dump_dom(report_dir / "report.html", tmp_path / "profile")
    text = _text(dom)
    assert text.startswith("Verdict: FAIL"), text[:200]
    start = text.index("ID Family Title Status Static Live Tiers agree")
    table = text[start:text.index("Failures", start)]
    assert table.index("SEC-02") < table.index("PROBE-03") < table.index("HPA-03") < table.index("SCHEMA-01")
    assert text.count("✗ MISMATCH") == 1  # the JWT case; the network mismatch is a grid cell
    assert text.count("source ↓ · destination → cortex-api kube-dns vault internet private-network") == 2
    assert "9121/TCP ALLOWED, NOT EXPECTED ✗" in text
    assert "Fault catalogue" in text
    assert "✗ MISSED (VAULT-03 did not fail)" in text
    for name, secret in planted.items():
        assert not any(f in dom for f in _fragments(name, secret)), name


def test_grid_mismatch_is_visible_and_red_in_chromium(report_dir, tmp_path):
    """In a real browser the mismatched flow is laid out, bold and on the failure red, unlike a matching flow."""
    seen = _computed(report_dir / "report.html", tmp_path, {
        "mismatch": "table.grid .f-allowed-unexpected", "match": "table.grid .f-allowed",
        "missed": "tr.missed td"})
    mismatch, match = seen["mismatch"], seen["match"]
    assert mismatch["text"].split() == ["9121/TCP", "ALLOWED,", "NOT", "EXPECTED", "✗"]
    assert mismatch["width"] > 0
    assert mismatch["height"] > 0
    assert (mismatch["visibility"], mismatch["display"]) == ("visible", "block")
    assert (mismatch["background"], mismatch["color"], mismatch["weight"]) == ("rgb(180, 35, 24)", "rgb(255, 255, 255)",
                                                                            "700")
    assert match["background"] != mismatch["background"]
    assert match["weight"] != "700"
    assert seen["missed"]["background"] == "rgb(253, 232, 231)"


def test_static_only_pass_is_not_green_in_chromium(tmp_path):
    """A PASS resting on the static tier alone reads "PASS (static tier only)", in another colour than a full PASS."""
    out = tmp_path / "reports"
    out.mkdir()
    data = json.loads((DATA / "results-static.json").read_text())
    data["results"] = [{"test": f"t::{c.id}", "control": c.id, "tier": "static", "outcome": "passed"}
                       for c in CATALOGUE if "static" in c.tiers]
    data["matrices"] = []
    (out / "results-static.json").write_text(json.dumps(data))
    doc = write_report(out, now=NOW)
    assert (doc["verdict"], doc["headline"]) == ("pass", "PASS (static tier only)")
    seen = _computed(out / "report.html", tmp_path, {"headline": "#verdict h1", "box": "#verdict"})
    assert seen["headline"]["text"] == "Verdict: PASS (static tier only)"
    green = "rgb(6, 118, 71)"
    assert green not in (seen["headline"]["color"], seen["box"]["background"])
    assert seen["headline"]["color"] == "rgb(23, 92, 211)"
