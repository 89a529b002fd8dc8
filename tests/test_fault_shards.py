"""The fault catalogue in shards: the split (deterministic, balanced by cost) and the report's merge, which
gives the same verdict as one whole record and refuses, in one line, any set of shards that is not one split
of one run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conformance import controls
from conformance.errors import InputError
from conformance.live.faults import sharding
from conformance.live.faults.catalogue import load
from conformance.live.faults.runner import clear, cost, new_pods, record_name, shard_of
from conformance.report import cli, shards

COMMIT = "3f9c2a7d5e1b4c6a8f0e2d4b6a8c0e2f4a6b8d0c"
DEV = {"name": "dev", "source": "overlays/dev", "sha256": "9a" * 32, "objects": 17}
PLATFORM = {"kubernetes": "v1.36.3", "istio": "1.31", "image_source": "build"}
NAMES = ["permissive-workload-mtls", "audience-typo", "pdb-deleted", "liveness-removed"]
CONTROL = {"permissive-workload-mtls": "MTLS-01", "audience-typo": "JWT-01", "pdb-deleted": "AVAIL-01",
           "liveness-removed": "PROBE-01"}


# -- the split ---------------------------------------------------------------------------------------------

def test_split_is_a_partition_in_catalogue_order_and_the_same_every_time():
    faults = load()
    for count in (1, 2, 3, 5):
        parts = sharding.split(faults, count, cost)
        assert parts == sharding.split(list(faults), count, cost)
        assert sorted(f.name for part in parts for f in part) == sorted(f.name for f in faults)
        for part in parts:
            assert part == [f for f in faults if f in part], "a shard keeps catalogue order"


@pytest.mark.parametrize("count", [2, 3, 4])
def test_split_spreads_rollouts_evenly_and_balances_cost(count):
    """Faults that roll out pods are the slow ones: no shard gets more than one more of them than another, and
    no shard weighs more than the heaviest single fault above another."""
    faults = load()
    parts = sharding.split(faults, count, cost)
    rollouts = [sum(1 for f in part if f.restart or new_pods(f)) for part in parts]
    assert max(rollouts) - min(rollouts) <= 1
    loads = [sum(cost(f) for f in part) for part in parts]
    assert max(loads) - min(loads) <= max(cost(f) for f in faults)


def test_shard_of_is_one_based_and_cost_counts_a_restart_twice():
    faults = load()
    assert shard_of(faults, 1, 1) == faults
    restart = next(f for f in faults if f.restart)
    overlay_only = next(f for f in faults if not f.restart and not f.cluster and not new_pods(f))
    assert cost(restart) > cost(overlay_only) == sharding.CHECKS


def test_a_shard_is_named_so_that_it_is_never_read_as_the_whole_catalogue():
    assert record_name(None) == "faults.json"
    assert record_name({"index": 2, "count": 3}) == "faults-2-of-3.json"
    assert shards.parse("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "2", "a/b", "1/0"):
        with pytest.raises(InputError, match="--shard"):
            shards.parse(bad)


def test_a_shard_clears_its_own_and_other_splits_records_but_not_its_siblings(tmp_path):
    for name in ("faults.json", "faults-1-of-2.json", "faults-2-of-2.json", "faults-1-of-3.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "faults" / "audience-typo").mkdir(parents=True)
    (tmp_path / "faults" / "pdb-deleted").mkdir(parents=True)
    clear(tmp_path, (2, 2), ["audience-typo"])
    assert sorted(p.name for p in tmp_path.glob("faults*.json")) == ["faults-1-of-2.json"]
    assert sorted(p.name for p in (tmp_path / "faults").iterdir()) == ["pdb-deleted"]
    clear(tmp_path, None, [])
    assert not list(tmp_path.glob("faults*"))


# -- the merge ---------------------------------------------------------------------------------------------

def _fault(name: str) -> dict:
    control = CONTROL[name]
    return {"name": name, "description": name, "kind": "overlay", "expect": [control], "because": {control: "denied"},
            "failed_checks": [{"test": f"t.py::test_{name}", "control": control, "outcome": "failed",
                               "message": "denied as it should be"}],
            "failed_controls": {control: ["denied as it should be"]}, "seconds": 10.0, "undone": True, "error": None}


# One workflow run's id, which every shard and the conformance run record (nightly.yml sets it).
SIGNOFF_RUN = "nightly-1-1"


def _record(names: list[str], *, shard: tuple[int, int, list[str]] | None = None, commit: str = COMMIT,
            dev: dict | None = None, started: str = "2026-12-07T21:10:00Z") -> dict:
    record = {"schema": "cortex-conformance/faults", "schema_version": 1, "started_at": started,
              "finished_at": "2026-12-07T21:30:00Z", "git": {"commit": commit, "dirty": False},
              "environment": PLATFORM, "inputs": [dev or DEV], "signoff_run": SIGNOFF_RUN,
              "baseline_before": {"outcome": "passed", "failed_controls": [], "seconds": 60.0},
              "baseline_after": {"outcome": "passed", "failed_controls": [], "seconds": 60.0},
              "faults": [_fault(n) for n in names], "catalogue": NAMES, "not_run": {}, "wall_seconds": 200.0}
    if shard is not None:
        record["shard"] = {"index": shard[0], "count": shard[1], "of": shard[2], "faults": list(names)}
    return record


def _shards(count: int = 2) -> dict[str, dict]:
    parts = [NAMES[i::count] for i in range(count)]
    return {shards.filename(i, count): _record(part, shard=(i, count, NAMES)) for i, part in enumerate(parts, 1)}


def _results() -> dict:
    results = [{"test": f"conformance/checks/test_{c.family.lower()}.py::test_{c.id}_{tier}[dev]", "control": c.id,
                "tier": tier, "input": "dev", "outcome": "passed", "message": "", "objects": [], "evidence": [],
                "duration_s": 0.1} for c in controls.CATALOGUE for tier in ("static", "live") if tier in c.tiers]
    return {"schema": "cortex-conformance/results", "schema_version": 1, "run": "conformance",
            "started_at": "2026-12-07T21:00:00Z", "finished_at": "2026-12-07T21:10:00Z",
            "git": {"commit": COMMIT, "dirty": False}, "inputs": [DEV], "environment": PLATFORM, "phases": [],
            "signoff_run": SIGNOFF_RUN, "results": results, "matrices": []}


def _write(out: Path, records: dict[str, dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results-conformance.json").write_text(json.dumps(_results()))
    for name, record in records.items():
        (out / name).write_text(json.dumps(record))
    return out


def _report(out: Path) -> dict:
    assert cli.main(["--report-dir", str(out)]) == 0
    return json.loads((out / "report.json").read_text())


def test_merged_shards_give_the_same_verdict_as_the_whole_catalogue(tmp_path):
    whole = _report(_write(tmp_path / "whole", {"faults.json": _record(NAMES)}))
    merged = _report(_write(tmp_path / "sharded", _shards(2)))
    for key in ("verdict", "headline", "level", "short_of_signoff", "verdict_reasons"):
        assert merged[key] == whole[key], key
    assert merged["headline"] == "SIGN-OFF PASS"
    catalogue = merged["faults"]
    assert [f["name"] for f in catalogue["faults"]] == NAMES  # catalogue order, not shard order
    assert (catalogue["killed"], catalogue["total"], catalogue["not_run"]) == (4, 4, [])


def test_merge_keeps_each_shards_baselines_and_fails_if_any_failed():
    records = _shards(2)
    records["faults-2-of-2.json"]["baseline_after"] = {"outcome": "failed", "failed_controls": ["NET-02"],
                                                       "seconds": 61.0}
    merged = shards.merge([(Path(n), r) for n, r in records.items()])
    assert merged["baseline_before"] == {"outcome": "passed", "failed_controls": [], "seconds": 120.0}
    assert merged["baseline_after"]["outcome"] == "failed"
    assert merged["baseline_after"]["failed_controls"] == ["NET-02"]
    assert [s["file"] for s in merged["shards"]] == ["faults-1-of-2.json", "faults-2-of-2.json"]
    assert merged["wall_seconds"] == 200.0  # side by side: the slowest shard's


def _refused(tmp_path: Path, capsys, records: dict[str, dict]) -> str:
    out = _write(tmp_path, records)
    assert cli.main(["--report-dir", str(out)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert not (out / "report.json").exists()
    return err


def test_a_missing_shard_is_refused(tmp_path, capsys):
    records = _shards(3)
    del records["faults-2-of-3.json"]
    assert "missing shard(s) 2/3" in _refused(tmp_path, capsys, records)


def test_a_duplicate_shard_is_refused():
    """The same part twice (a file copied under another name): its faults would count twice."""
    first = _shards(2)["faults-1-of-2.json"]
    with pytest.raises(InputError, match=r"shard 1/2 appears twice \(a\.json and b\.json\)"):
        shards.merge([(Path("a.json"), first), (Path("b.json"), copy.deepcopy(first))])


def test_a_shard_named_for_another_part_is_refused(tmp_path, capsys):
    records = _shards(2)
    records["faults-2-of-2.json"]["shard"]["index"] = 1
    assert "named for shard 2/2 but records shard 1/2" in _refused(tmp_path, capsys, records)


def test_a_shard_of_another_split_is_refused(tmp_path, capsys):
    """A foreign shard: another count, or the same count over other faults (another --only)."""
    records = {**_shards(2), "faults-1-of-3.json": _shards(3)["faults-1-of-3.json"]}
    assert "shards of different counts" in _refused(tmp_path / "count", capsys, records)
    records = _shards(2)
    records["faults-2-of-2.json"]["shard"]["of"] = NAMES[:3]
    assert "shards of different fault lists" in _refused(tmp_path / "list", capsys, records)


@pytest.mark.parametrize(("change", "problem"), [
    ({"commit": "c" * 40}, "shards of different commits cannot make one catalogue: faults-1-of-2.json 3f9c2a7d5e1b, "
                           "faults-2-of-2.json cccccccccccc"),
    ({"dev": {**DEV, "sha256": "d" * 64}}, "shards of different manifest digests"),
], ids=["commit", "manifests"])
def test_shards_of_different_commits_or_manifests_are_refused(tmp_path, capsys, change, problem):
    records = _shards(2)
    second = records["faults-2-of-2.json"]
    records["faults-2-of-2.json"] = _record([f["name"] for f in second["faults"]], shard=(2, 2, NAMES), **change)
    assert problem in _refused(tmp_path, capsys, records)


def test_shards_of_different_platforms_are_refused(tmp_path, capsys):
    records = _shards(2)
    records["faults-2-of-2.json"]["environment"] = {**PLATFORM, "kubernetes": "v1.37.2"}
    assert "shards of different platforms" in _refused(tmp_path, capsys, records)


def test_a_fault_in_two_shards_or_outside_its_shard_is_refused(tmp_path, capsys):
    records = _shards(2)
    records["faults-2-of-2.json"]["shard"]["faults"].append(NAMES[0])
    assert "fault permissive-workload-mtls is in two shards" in _refused(tmp_path / "twice", capsys, records)
    records = _shards(2)
    records["faults-2-of-2.json"]["faults"].append(_fault(NAMES[0]))
    assert "records fault(s) its shard does not hold: permissive-workload-mtls" in _refused(
        tmp_path / "stray", capsys, records)


def test_a_whole_catalogue_beside_shards_is_refused(tmp_path, capsys):
    records = {**_shards(2), "faults.json": _record(NAMES)}
    assert "holds both faults.json (a whole catalogue) and shard records" in _refused(tmp_path, capsys, records)


def test_a_lone_shard_is_a_partial_catalogue_never_a_signoff(tmp_path, capsys):
    """One shard with its siblings missing is refused; a 1/1 split is the whole catalogue, merged."""
    records = _shards(2)
    del records["faults-1-of-2.json"]
    assert "missing shard(s) 1/2" in _refused(tmp_path / "lone", capsys, records)
    doc = _report(_write(tmp_path / "one", {"faults-1-of-1.json": _record(NAMES, shard=(1, 1, NAMES))}))
    assert doc["headline"] == "SIGN-OFF PASS"


# -- the runner's record of a shard ----------------------------------------------------------------------

def test_a_shard_records_its_part_of_the_split_and_its_own_baselines(tmp_path, monkeypatch):
    """What a shard run writes: faults-K-of-N.json with shard {index, count, of, faults}, the whole catalogue's
    names, and baselines named for the shard (siblings sharing a report directory never overwrite them)."""
    from types import SimpleNamespace

    from conformance.live.faults import runner

    faults = [f for f in load() if f.name in NAMES]
    baselines: list[str] = []
    monkeypatch.setattr(runner, "_baseline", lambda env, name, report_dir, progress: baselines.append(name) or {
        "outcome": "passed", "failed_controls": [], "seconds": 1.0})
    monkeypatch.setattr(runner, "reset_scale", lambda env: None)
    monkeypatch.setattr(runner, "_one", lambda env, fault, *args, **kwargs: {
        "name": fault.name, "killed": True, "undone": True, "undo": None})
    env = SimpleNamespace(describe=lambda: PLATFORM, workload=SimpleNamespace(rendered=""),
                          images=SimpleNamespace(source="build"))
    part = shard_of(faults, 2, 2)
    document = runner.run_catalogue(env, part, tmp_path, lambda line: None, [f.name for f in load()],
                                    shard={"index": 2, "count": 2, "of": [f.name for f in faults]})
    assert baselines == ["baseline-before-2-of-2", "baseline-after-2-of-2"]
    assert not (tmp_path / "faults.json").exists()
    written = json.loads((tmp_path / "faults-2-of-2.json").read_text())
    assert written == json.loads(json.dumps(document))
    assert written["shard"] == {"index": 2, "count": 2, "of": [f.name for f in faults],
                                "faults": [f.name for f in part]}
    assert len(written["catalogue"]) == len(load())
