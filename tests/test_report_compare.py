"""--compare: what changed between an earlier report.json and this one."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from conformance.errors import InputError
from conformance.report import compare, write_report

DATA = Path(__file__).parent / "data" / "report"


def _control(cid: str, status: str, static: str = "passed", live: str = "passed") -> dict:
    return {"id": cid, "title": f"title of {cid}", "status": status,
            "static": {"result": static}, "live": {"result": live}}


OLD = {"schema": "cortex-conformance/report", "schema_version": 1, "date": "2026-11-24T21:00:00Z",
       "verdict": "fail", "git": {"commit": "a" * 40},
       "inputs": [{"name": "dev", "sha256": "1" * 64}],
       "controls": [_control("SEC-01", "passed"), _control("SEC-02", "failed", live="failed"),
                    _control("NET-01", "failed", static="failed"), _control("OLD-01", "passed"),
                    _control("GW-01", "passed")]}
NEW = {"inputs": [{"name": "dev", "sha256": "2" * 64}],
       "controls": [_control("SEC-01", "failed", live="failed"), _control("SEC-02", "passed"),
                    _control("NET-01", "error", static="error"), _control("NEW-01", "passed"),
                    _control("GW-01", "skipped", live="skipped")]}


@pytest.fixture(scope="module")
def diff() -> dict:
    return compare.compare(NEW, OLD, old_path="old/report.json")


def _ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


def test_newly_failing(diff):
    """A control that passed before and fails now is newly failing, with the tier that changed."""
    assert diff["newly_failing"] == [{"id": "SEC-01", "title": "title of SEC-01", "from": "passed",
                                      "to": "failed", "tiers": {"live": ["passed", "failed"]}}]


def test_fixed(diff):
    """A control that failed before and passes now is fixed."""
    assert _ids(diff["fixed"]) == ["SEC-02"]


def test_still_failing(diff):
    """A control failing in both (failed or error) is listed as still failing, not as news."""
    assert _ids(diff["still_failing"]) == ["NET-01"]


def test_added_and_removed(diff):
    """Controls only in the new report are added; controls only in the old one are removed."""
    assert (_ids(diff["added"]), _ids(diff["removed"])) == (["NEW-01"], ["OLD-01"])


def test_other_status_changes(diff):
    """A pass turning into a skip is neither failing nor fixed but still reported."""
    assert [(i["id"], i["from"], i["to"]) for i in diff["other_changes"]] == [("GW-01", "passed", "skipped")]


def test_changed_manifests(diff):
    """A changed input sha256 is reported, so a reader knows the manifests differ."""
    assert diff["inputs_changed"] == [{"name": "dev", "source": None, "from_source": None,
                                       "from": "1" * 64, "to": "2" * 64}]


def _input(name: str, source: str, digest: str) -> dict:
    return {"name": name, "source": source, "sha256": digest * 64, "objects": 3}


def test_split_overlays_against_a_single_file_are_not_no_change():
    """base+dev compared with one rendered file: dev changed, base removed, the file's input added."""
    old = [_input("base", "overlays/base", "b"), _input("dev", "overlays/dev", "d")]
    new = [_input("dev", "overlays/dev", "e"), _input("bundle", "build/bundle.yaml", "f")]
    changes = compare.input_changes(new, old)
    assert changes == {
        "inputs_changed": [{"name": "dev", "source": "overlays/dev", "from_source": "overlays/dev",
                            "from": "d" * 64, "to": "e" * 64}],
        "inputs_added": [{"name": "bundle", "source": "build/bundle.yaml", "sha256": "f" * 64}],
        "inputs_removed": [{"name": "base", "source": "overlays/base", "sha256": "b" * 64}]}


def test_same_name_from_another_source_is_a_change():
    """An input rendered identically but from another source still shows, with both sources."""
    changes = compare.input_changes([_input("dev", "dev.yaml", "d")], [_input("dev", "overlays/dev", "d")])
    assert [(c["from_source"], c["source"]) for c in changes["inputs_changed"]] == [("overlays/dev", "dev.yaml")]


def test_input_changes_are_rendered(tmp_path):
    """The page and the summary name the changed, added and removed inputs and the sha256 change."""
    out = tmp_path / "reports"
    shutil.copytree(DATA, out)
    old = write_report(out)
    old["inputs"] = [_input("base", "overlays/base", "b"), _input("dev", "overlays/dev", "c")]
    (tmp_path / "old.json").write_text(json.dumps(old))
    doc = write_report(out, compare_with=tmp_path / "old.json")
    assert [i["name"] for i in doc["comparison"]["inputs_removed"]] == ["base"]
    summary = (out / "report.md").read_text()
    assert ("- Manifests: `dev`: manifests changed (sha256 cccccccccccc→9a1f0c3e5b7d); "
            "removed input `base` (was overlays/base)") in summary
    page = (out / "report.html").read_text()
    assert "removed input <code>base</code> (was <code>overlays/base</code>)" in page
    assert 'manifests changed (sha256 <code title="' + "c" * 64 + '">cccccccccccc</code>' in page


def test_unchanged_inputs_say_so(tmp_path):
    """Comparing with a report of the same manifests says they are unchanged, not nothing at all."""
    out = tmp_path / "reports"
    shutil.copytree(DATA, out)
    write_report(out)
    shutil.copy(out / "report.json", tmp_path / "old.json")
    write_report(out, compare_with=tmp_path / "old.json")
    assert "- Manifests: unchanged (same inputs, same sha256)" in (out / "report.md").read_text()


def test_identical_reports_have_no_changes():
    """Comparing a report with itself lists no change, only what keeps failing."""
    same = compare.compare(copy.deepcopy(OLD), OLD, old_path="x")
    assert not any(same[k] for k in ("newly_failing", "fixed", "added", "removed", "other_changes",
                                     "inputs_changed", "inputs_added", "inputs_removed"))
    assert _ids(same["still_failing"]) == ["SEC-02", "NET-01"]


@pytest.mark.parametrize(("content", "problem"), [
    ("[1, 2", "not valid JSON"),
    ({"schema": "cortex-conformance/results"}, "not a report.json (schema is not 'cortex-conformance/report')"),
    ({**OLD, "schema_version": 7}, "schema_version 7 is not supported (this report reads 1)"),
    ({**OLD, "controls": [{"id": "SEC-01"}]}, "'controls' must be a list of objects with id and status"),
], ids=["invalid-json", "results-not-report", "newer-version", "bad-controls"])
def test_bad_old_report_is_one_line(tmp_path, content, problem):
    """An unusable --compare file is rejected with one line naming it."""
    path: Path = tmp_path / "old.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InputError) as caught:
        compare.load_report(path)
    assert str(caught.value) == f"--compare {path}: {problem}"


def test_missing_old_report_is_one_line(tmp_path):
    """A --compare path that does not exist is named in the error."""
    with pytest.raises(InputError, match=r"^--compare .*/nope\.json: cannot read \(No such file or directory\)$"):
        compare.load_report(tmp_path / "nope.json")


def _catalogue(**kills: tuple[str, dict]) -> dict:
    return {"faults": [{"name": name, "kill": kill, "kills": per} for name, (kill, per) in kills.items()]}


def test_faults_judged_another_way_are_listed():
    """A fault killed before and missed now, or killed for another reason on one control, is a change; so is a
    fault in one catalogue only. Faults judged the same way are not."""
    ok = ("killed as expected", {"JWT-01": "killed as expected"})
    old = {**OLD, "faults": _catalogue(a=ok, b=ok, gone=ok)}
    new = {**NEW, "faults": _catalogue(a=ok, b=("missed", {"JWT-01": "missed"}), fresh=ok)}
    diff = compare.compare(new, old, old_path="x")
    assert diff["faults_compared"] == 2
    assert [(c["name"], c["from"], c["to"]) for c in diff["faults_changed"]] == [
        ("b", "killed as expected", "missed")]
    assert [f["name"] for f in diff["faults_added"]] == ["fresh"]
    assert [f["name"] for f in diff["faults_removed"]] == ["gone"]


def test_no_catalogue_on_one_side_is_not_called_the_same():
    """Without a catalogue in both reports nothing is said to be unchanged: faults_compared is None."""
    diff = compare.compare({**NEW, "faults": _catalogue(a=("killed as expected", {}))}, OLD, old_path="x")
    assert diff["faults_compared"] is None


def test_a_report_compared_with_itself_says_every_fault_was_judged_the_same(tmp_path):
    """The page and the summary say so in words, with the number of faults compared."""
    out = tmp_path / "reports"
    shutil.copytree(DATA, out)
    doc = write_report(out)
    shutil.copy(out / "report.json", tmp_path / "old.json")
    write_report(out, compare_with=tmp_path / "old.json")
    total = len(doc["faults"]["faults"])
    assert f"each of the {total} faults in both judged the same way" in (out / "report.md").read_text()
    assert f"each of the {total} faults in both was judged the same way" in (out / "report.html").read_text()
