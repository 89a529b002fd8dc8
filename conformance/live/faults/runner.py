"""Run the live fault catalogue: baseline, every fault (apply, live checks, undo), baseline again.

On our kind cluster (created, or reused from `nox -s cluster`): the environment comes up once, the
live checks run in this process against it (pytest.main with the environment attached), and each
fault's run writes its results under <report-dir>/faults/<name>/. The whole catalogue ends in
<report-dir>/faults.json, which the sign-off report reads. A fault no check notices, a fault not
undone, or a failed baseline makes the exit code non-zero.

    python -m conformance.live.faults [--only NAME ...] [--shard K/N] [--images auto|pull|build]
                                      [--kubernetes MINOR] [--istio RELEASE] [--report-dir DIR]

With `--shard K/N` it runs part K of N (sharding.split), with its own baselines, into
<report-dir>/faults-K-of-N.json; the report merges the N parts (conformance.report.shards).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import fixtures, kills
from conformance.errors import ConformanceError, InputError, run_cli
from conformance.live.faults import actions, sharding, undone
from conformance.live.faults.catalogue import Fault, load, uncovered
from conformance.live.platform import push
from conformance.live.workload.changes import changed_objects, object_digests
from conformance.paths import CHECKS, OVERLAYS, REPO, REPORTS
from conformance.plugin.results import SIGNOFF_RUN
from conformance.plugin.state import now
from conformance.progress import Progress, install
from conformance.report import shards
from conformance.static import mutations
from conformance.static.manifests import load_overlay

SCHEMA = "cortex-conformance/faults"
SCHEMA_VERSION = 1
ATTACHED = "cortex-attached-environment"


class Attached:
    """The pytest plugin that hands the checks' `live` fixture an environment this process holds.

    pluggy registers a plugin object under its `__name__`, which is the name conftest looks for.
    """

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.__name__ = ATTACHED


def run_checks(env, run_name: str, report_dir: Path, only: list[str] | None = None) -> dict[str, Any]:
    """The live checks against `env`, in this process; returns what they recorded (results-<run>.json)."""
    # Quiet: one line of dots per run; the runner says what failed, and the results file holds the messages.
    args = [str(CHECKS), "-m", "live", "--run-name", run_name, "--report-dir", str(report_dir), "-q",
            "--no-header", "--tb=no", "-rN", "--no-summary", "-p", "no:cacheprovider",
            "-o", "console_output_style=classic",
            # Every run after the first imports the same modules again: pytest cannot rewrite them twice.
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if only:
        args += ["--controls", ",".join(only)]
    # Each pytest run selects its pins again from its own options: the environment's platform, not the default.
    for option in ("kubernetes", "istio"):
        if value := getattr(env.options, option):
            args += [f"--{option}", value]
    push.DRAIN.settle()
    pytest.main(args, plugins=[Attached(env)])
    path = report_dir / f"results-{run_name}.json"
    if not path.exists():
        raise ConformanceError(f"the live checks of {run_name} recorded nothing ({path} is missing)")
    return json.loads(path.read_text())


def failed_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The failed or errored checks of a run: test, control, outcome and message (what a kill is judged on)."""
    return [{"test": r["test"], "control": r["control"], "outcome": r["outcome"],
             "message": (r.get("message") or "")[:2000]}
            for r in results.get("results") or [] if r["outcome"] in kills.FAILING]


def failed_controls(checks: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Control -> the messages of its failed or errored checks."""
    out: dict[str, list[str]] = {}
    for check in checks:
        out.setdefault(check["control"], []).append(check["message"])
    return out


def _faulted_overlay(env, fault: Fault) -> Path:
    """overlays/dev as rendered, with the fault's mutations, as a kustomization the conformance overlay can use."""
    bundle = mutations.apply(load_overlay(OVERLAYS / "dev"), list(fault.overlay))
    root = env.work / f"fault-{fault.name}-dev"
    root.mkdir(parents=True, exist_ok=True)
    (root / "rendered.yaml").write_text(yaml.safe_dump_all([o.doc for o in bundle.objects], sort_keys=False))
    (root / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["rendered.yaml"]}))
    return root


def _istio_changed(before: str, after: str) -> bool:
    """Whether the two renderings differ in an Istio resource: a change the proxies get by a push."""
    return push.any_istio(changed_objects(object_digests(before), object_digests(after)))


def _apply_and_push(env, rendered: str, what: str, progress, wait: float | None = None,
                    undoing: bool = False) -> None:
    # Judged against what the cluster holds now: the baseline, or the previous fault's overlay (chained()).
    # A push that never comes is a line in the log; a fault the checks then miss is reported as missed. Not so
    # for an undo: a push that never arrived leaves the proxies on the fault's config, so it is not undone.
    missed: list[str] = []
    push.pushing(env, lambda: env.workload.apply_overlay(rendered, **({} if wait is None else {"wait": wait})),
                 what, mesh=_istio_changed(env.workload.rendered, rendered),
                 said=missed.append if undoing else (lambda line: progress(f"faults: {line}")))
    if missed:
        raise ConformanceError(missed[0])


def apply_fault(env, fault: Fault, progress: Callable[[str], None], baseline: str,
                pods_from: Fault | None = None, keep_pods: bool = False) -> tuple[list[Callable[[], None]], bool]:
    """Make the fault; returns the undo steps, to be run in reverse order, and whether it had to start
    from the baseline's pods again. `baseline` is the rendered overlay the catalogue started from, which
    an overlay fault's undo applies again; `pods_from` is the previous fault, when it was left for this
    one's overlay to replace and the pods that serve are its own. `keep_pods`: a restart fault whose undo
    leaves its pods for the next restart fault's new pods to replace (restart_chained)."""
    undos: list[Callable[[], None]] = []
    restored = False
    workload = env.workload
    if fault.restart and not keep_pods:
        undos.append(lambda: workload.restart())
    # The cluster steps first: what the overlay's new pods need (a Vault role, an image under a tag) exists
    # when they start, so they come up at once, without a rollout that times out and a restart after it.
    # Undone in reverse: the baseline's pods are back before what they no longer use goes.
    for step in fault.cluster:
        progress(f"fault {fault.name}: {next(iter(step))} {_describe(step)}")
        undos.append(actions.run_step(env, step))
    if fault.overlay:
        rendered = workload.render_overlay(_faulted_overlay(env, fault), name=f"fault-{fault.name}")

        def restore() -> None:
            workload.render_overlay(OVERLAYS / "dev")
            _apply_and_push(env, baseline, "baseline's Istio config", progress, undoing=True)
            if workload.rollout_error:
                raise ConformanceError(f"the baseline did not roll out again: {workload.rollout_error}")
        undos.append(restore)
        progress(f"fault {fault.name}: applying the changed overlay")
        _apply_and_push(env, rendered, f"Istio config of {fault.name}", progress, wait=fault.rollout_seconds)
        if pods_from is not None and workload.rollout_error:
            # A rollout that does not finish leaves the previous pods running: those of the fault before,
            # whose failures the checks would blame on this one (measured: SEC-02 under
            # workload-runs-as-another-account, from writable-root-filesystem's pods). From the baseline's.
            progress(f"fault {fault.name}: its pods did not roll out and {pods_from.name}'s still run: from the "
                     "baseline's pods instead")
            restore()
            restored = True
            _apply_and_push(env, rendered, f"Istio config of {fault.name}", progress, wait=fault.rollout_seconds)
    if fault.restart:
        progress(f"fault {fault.name}: new pods, so that admission runs again")
        workload.restart(timeout=fault.rollout_seconds)
    return undos, restored


def chained(fault: Fault) -> bool:
    """Whether the fault only changes the overlay: the next such fault's overlay then undoes it, since an
    overlay's apply makes the cluster hold exactly that rendering (deleting what it lacks), and one
    rollout replaces two (restore, then the next fault)."""
    return bool(fault.overlay) and not fault.cluster and not fault.restart


def new_pods(fault: Fault) -> bool:
    """Whether the fault's overlay changes the pod template, so that its apply rolls out new pods."""
    return any(str(m.get("target", "")).startswith("Deployment/") and str(m.get("path", "")).startswith(
        "spec.template") for m in fault.overlay)


def restart_chained(fault: Fault, follows: Fault | None) -> bool:
    """Whether a restart fault's undo may leave its pods for the next one's restart to replace: the next fault
    restarts the pods too, after its own change, so they are admitted under the baseline plus that change
    only; one rollout replaces two (the undo's restart, then the next fault's). What the first fault changed
    is undone, and checked undone (undone.leftovers), before the next one is applied."""
    return fault.restart and follows is not None and follows.restart


def running_order(faults: list[Fault]) -> list[Fault]:
    """The faults with cluster steps first, those that restart the pods last among them and together
    (restart_chained); then the overlay-only ones back to back, those that keep the pods
    before those that roll out new ones, each group in catalogue order. Every change of pod template is a
    rollout (about 30 s here): in this order each such fault costs one, and the return to the baseline's
    pods one more, instead of two each.

    Among those that roll out new pods, the ones with the shortest rollout bound first: a fault declares a
    short bound when its pods are not expected to come up, and such a rollout leaves the pods before it
    serving. Right after the baseline's those are the baseline's; after another fault's they are that
    fault's, and the runner must go back to the baseline's and apply it again (measured: 100 s)."""
    pods = [f for f in faults if chained(f) and new_pods(f)]
    # The faults that restart the pods last among those with cluster steps, together (restart_chained), the
    # shortest rollout bound first for the same reason as below.
    restarts = sorted((f for f in faults if f.restart), key=lambda f: f.rollout_seconds)
    return ([f for f in faults if not chained(f) and not f.restart] + restarts
            + [f for f in faults if chained(f) and not new_pods(f)] + sorted(pods, key=lambda f: f.rollout_seconds))


def cost(fault: Fault) -> int:
    """The fault's weight for the split into shards: its rollouts (a restart's two, the new pod template's one),
    its change to the cluster, its checks."""
    return sharding.cost(rollouts=2 if fault.restart else int(new_pods(fault)), cluster=bool(fault.cluster))


def shard_of(faults: list[Fault], index: int, count: int) -> list[Fault]:
    """Part `index` (1-based) of `count` of `faults`: the same for every shard that splits the same faults."""
    return sharding.split(faults, count, cost)[index - 1]


def _describe(step: dict[str, Any]) -> str:
    value = next(iter(step.values()))
    if isinstance(value, dict):
        meta = value.get("metadata") or value
        return f"{value.get('kind', meta.get('name', ''))} {meta.get('namespace', '')}/{meta.get('name', '')}".strip()
    return str(value)


def undo_all(undos: list[Callable[[], None]]) -> list[str]:
    errors = []
    for undo in reversed(undos):
        try:
            undo()
        except ConformanceError as exc:
            errors.append(str(exc))
    return errors


def reset_scale(env) -> None:
    """Back to the HPA's minimum: the baseline's load test scaled the Deployment up, and every later
    rollout would otherwise replace four pods instead of two."""
    spec = fixtures.workload()
    minimum = fixtures.expectations("live")["hpa"]["min_replicas"]
    env.kube.run("delete", "hpa", spec.name, "-n", spec.namespace, "--ignore-not-found")
    env.kube.run("scale", f"deployment/{spec.name}", "-n", spec.namespace, f"--replicas={minimum}")
    env.workload.apply_overlay(env.workload.rendered)


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": run("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def _baseline(env, name: str, report_dir: Path, progress) -> dict[str, Any]:
    progress(f"{name}: every live check")
    started = time.monotonic()
    results = run_checks(env, name, report_dir / "faults" / name)
    failed = failed_controls(failed_checks(results))
    return {"outcome": "failed" if failed else "passed", "failed_controls": sorted(failed),
            "seconds": round(time.monotonic() - started, 1)}


def run_catalogue(env, faults: list[Fault], report_dir: Path, progress: Callable[[str], None],
                  catalogue: list[str] | None = None, shard: dict[str, Any] | None = None) -> dict[str, Any]:
    """Baseline, each fault, baseline. `shard`: {index, count, of: the faults split} when `faults` is one part."""
    started_at, began = now(), time.monotonic()
    # The manifests the catalogue stands behind: the report pairs it only with results of the same digest.
    dev = load_overlay(OVERLAYS / "dev")
    document: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "started_at": started_at,
                                "git": _git(), "environment": env.describe(), "faults": [],
                                "signoff_run": os.environ.get(SIGNOFF_RUN) or None,
                                "inputs": [{"name": dev.name, "source": dev.source, "sha256": dev.sha256}],
                                "catalogue": catalogue or [f.name for f in faults], "not_run": {}}
    # A shard's own baselines, named for it: shards may share a report directory one after the other.
    suffix = ""
    if shard is not None:
        document["shard"] = {**shard, "faults": [f.name for f in faults]}
        suffix = f"-{shard['index']}-of-{shard['count']}"
    document["baseline_before"] = _baseline(env, f"baseline-before{suffix}", report_dir, progress)
    reset_scale(env)
    baseline = env.workload.rendered
    runnable = [f for f in running_order(faults) if not f.images or env.images.source in f.images]
    for fault in (f for f in faults if f not in runnable):
        # Recorded, not only said: a catalogue that skipped a fault is partial, and never a sign-off.
        document["not_run"][fault.name] = f"applies only to --images {'/'.join(fault.images)}"
        progress(f"{fault.name}: only for --images {'/'.join(fault.images)}; not run")
    position = {f.name: i for i, f in enumerate(faults)}
    replaced = False  # the previous fault's overlay is still applied, for this one's to replace
    pods_from: Fault | None = None  # the fault whose pods serve now, when not the baseline's
    for index, fault in enumerate(runnable, 1):
        progress(f"[{index}/{len(runnable)}] {fault.name}: {fault.description}")
        follows = runnable[index] if index < len(runnable) else None
        entry = _one(env, fault, report_dir, progress, baseline, after_replaced=replaced, pods_from=pods_from,
                     replace=chained(fault) and follows is not None and chained(follows),
                     keep_pods=restart_chained(fault, follows))
        replaced = entry.get("undo") == REPLACED
        pods_from = serving_pods(fault, entry, pods_from)
        document["faults"].append(entry)
        document["faults"].sort(key=lambda f: position[f["name"]])
        _write(document, report_dir, began)
    document["baseline_after"] = _baseline(env, f"baseline-after{suffix}", report_dir, progress)
    return _write(document, report_dir, began)


REPLACED = "by the next fault's overlay, which replaced it whole"
PODS_REPLACED = "its own steps; its pods by the next fault's restart, after that fault's change"


def serving_pods(fault: Fault, entry: dict[str, Any], before: Fault | None) -> Fault | None:
    """The fault whose pods serve after this one's run (None: the baseline's): an undo or a return to the
    baseline brings its pods back; a rollout that finished brings the fault's; one that did not changes
    nothing."""
    if entry.get("undo") != REPLACED or entry.get("restored"):
        return None
    if new_pods(fault) and not entry.get("rollout_error"):
        return fault
    return before


def _one(env, fault: Fault, report_dir: Path, progress, baseline: str, *, after_replaced: bool = False,
         pods_from: Fault | None = None, replace: bool = False, keep_pods: bool = False) -> dict[str, Any]:
    """Apply, check and undo one fault. `replace`: leave an overlay-only fault for the next one's overlay
    to undo; `after_replaced`: the previous fault was left so, and this one's apply replaces it;
    `pods_from`: the fault whose pods serve now (serving_pods); `keep_pods`: a restart fault's undo leaves its
    pods for the next restart fault's to replace (restart_chained)."""
    started = time.monotonic()
    phases: dict[str, float] = {}
    entry: dict[str, Any] = {"name": fault.name, "description": fault.description, "kind": fault.kind,
                             "expect": list(fault.expect), "because": dict(fault.because), "failed_checks": [],
                             "failed_controls": {}, "error": None}
    undos: list[Callable[[], None]] = []
    try:
        # The previous run's experiments (an eviction, a restart) leave pods starting: begin from a whole
        # workload. Not after a fault left in place: its rollout may never finish, and this apply replaces it.
        if not after_replaced:
            env.workload.wait_rollout()
        undos, entry["restored"] = apply_fault(env, fault, progress, baseline, pods_from=pods_from,
                                               keep_pods=keep_pods)
        entry["rollout_error"] = env.workload.rollout_error
        phases["apply"] = time.monotonic() - started
        results = run_checks(env, f"fault-{fault.name}", report_dir / "faults" / fault.name, fault.controls())
        phases["checks"] = time.monotonic() - started - phases["apply"]
        entry["failed_checks"] = failed_checks(results)
        entry["failed_controls"] = failed_controls(entry["failed_checks"])
    except ConformanceError as exc:
        entry["error"] = f"the fault could not be applied or checked: {exc}"
    finally:
        if replace and entry["error"] is None:
            entry["undo"] = REPLACED
            errors = []
        else:
            progress(f"fault {fault.name}: undoing")
            undoing = time.monotonic()
            if keep_pods and entry["error"] is None:
                entry["undo"] = PODS_REPLACED
            elif keep_pods:
                # Gone wrong: the next fault must not begin from this one's pods. Last, as a restart undo runs.
                undos.insert(0, env.workload.restart)
            errors = undo_all(undos)
            # Proof, not the absence of an exception: what the fault left behind is named.
            try:
                entry["leftovers"] = undone.leftovers(env, fault, baseline)
            except ConformanceError as exc:
                entry["leftovers"] = [f"could not look: {exc}"]
            phases["undo"] = time.monotonic() - undoing
    entry["undone"] = not errors and not entry.get("leftovers")
    # Where the fault's time went: its apply (with the wait for a whole workload before it), the live
    # checks (with the drain of its push), its undo (none when the next fault's overlay replaces it).
    entry["phase_seconds"] = {name: round(seconds, 1) for name, seconds in phases.items()}
    if errors or entry.get("leftovers"):
        entry["error"] = "; ".join(filter(None, [entry["error"], *(f"undo: {e}" for e in errors),
                                                 *(f"left over: {e}" for e in entry.get("leftovers") or [])]))
    entry["kills"] = kills.judge(list(fault.expect), fault.because, entry["failed_checks"])
    entry["kill"] = kills.overall(entry["kills"])
    entry["missed"] = [c for c, k in entry["kills"].items() if k == kills.MISSED]
    entry["killed"] = entry["kill"] == kills.AS_EXPECTED and entry["error"] is None
    entry["seconds"] = round(time.monotonic() - started, 1)
    verdict = "killed as expected" if entry["killed"] else "error" if entry["error"] else (
        "; ".join(f"{c} {k}" for c, k in entry["kills"].items() if k != kills.AS_EXPECTED))
    progress(f"fault {fault.name}: {verdict} in {entry['seconds']} s"
             + (f" (failed: {', '.join(sorted(entry['failed_controls']))})" if entry["failed_controls"] else ""))
    return entry


def _write(document: dict[str, Any], report_dir: Path, began: float) -> dict[str, Any]:
    document["finished_at"] = now()
    document["killed"] = sum(1 for f in document["faults"] if f["killed"])
    document["total"] = len(document["faults"])
    document["wall_seconds"] = round(time.monotonic() - began, 1)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / record_name(document.get("shard"))).write_text(json.dumps(document, indent=1) + "\n")
    return document


def record_name(shard: dict[str, Any] | None) -> str:
    """faults.json for the whole catalogue; faults-K-of-N.json for a shard, never to be read as the whole."""
    return "faults.json" if shard is None else shards.filename(shard["index"], shard["count"])


def clear(report_dir: Path, shard: tuple[int, int] | None, names: list[str]) -> None:
    """What an earlier run left that this one's record could be read with: a whole run removes every catalogue
    record (shards too); a shard removes the whole record, its own and those of other splits (another N), and
    the evidence of its own faults, leaving the other shards of its split for the report to merge."""
    (report_dir / "faults.json").unlink(missing_ok=True)
    if shard is None:
        for stale in shards.files(report_dir):
            stale.unlink()
        shutil.rmtree(report_dir / "faults", ignore_errors=True)
        return
    index, count = shard
    for stale in shards.files(report_dir):
        match = shards.PATTERN.fullmatch(stale.name)
        if int(match[2]) != count or int(match[1]) == index:
            stale.unlink()
    suffix = f"-{index}-of-{count}"
    for name in [*names, f"baseline-before{suffix}", f"baseline-after{suffix}"]:
        shutil.rmtree(report_dir / "faults" / name, ignore_errors=True)


def succeeded(document: dict[str, Any]) -> bool:
    baselines = [document.get("baseline_before"), document.get("baseline_after")]
    return (all(b and b["outcome"] == "passed" for b in baselines)
            and all(f["killed"] and f["undone"] for f in document["faults"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.live.faults",
                                     description="Apply each fault of fixtures/faults.yaml to the kind cluster, run "
                                                 "the live checks, undo it; baseline before and after.")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these faults")
    parser.add_argument("--shard", metavar="K/N", help="run part K of N of the faults (with its own baselines) "
                                                        "into faults-K-of-N.json; the report merges the N parts")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--images", choices=["auto", "pull", "build"], default="auto")
    parser.add_argument("--nodes", type=int, choices=[1, 3], default=3)
    # The platform, as `nox -s conformance` takes it: the catalogue runs on the cluster of that pair (a kept
    # cluster of another pair is made again), so a sign-off's checks and catalogue see one platform.
    parser.add_argument("--kubernetes", metavar="MINOR", help="a Kubernetes minor of fixtures/versions.yaml")
    parser.add_argument("--istio", metavar="RELEASE", help="an Istio release of fixtures/versions.yaml")
    parser.add_argument("--report-dir", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    outcome: dict[str, Any] = {}

    def act() -> None:
        from conformance.live.environment import Environment
        from conformance.live.options import Options

        fixtures.select(args.kubernetes, args.istio)  # a pair not pinned is one line, before anything is cleared
        faults = load()
        missing = uncovered(faults)
        if missing:
            raise InputError(f"fixtures/faults.yaml: no fault expects {', '.join(missing)} to fail, so its live "
                             "check is unproven")
        if args.list:
            for fault in faults:
                print(f"{fault.name:40} {fault.kind:16} {', '.join(fault.expect)}")
            return
        unknown = sorted(set(args.only) - {f.name for f in faults})
        if unknown:
            raise InputError(f"--only: no fault named {', '.join(unknown)}")
        chosen = [f for f in faults if not args.only or f.name in args.only]
        shard, part = (shards.parse(args.shard) if args.shard else None), None
        if shard is not None:
            part = {"index": shard[0], "count": shard[1], "of": [f.name for f in chosen]}
            chosen = shard_of(chosen, *shard)
            print(f"faults: shard {shard[0]}/{shard[1]}: {', '.join(f.name for f in chosen) or 'no fault'}")
        # The cluster is kept for the next run; the workload too when the catalogue left it whole.
        options = Options(images=args.images, nodes=args.nodes, report_dir=args.report_dir,
                          kubernetes=args.kubernetes, istio=args.istio)
        # A catalogue that stops must leave no earlier catalogue's record behind to be read as this one's.
        clear(args.report_dir, shard, [f.name for f in chosen])
        env = Environment(options, progress=install(Progress()))
        try:
            env.up()
            outcome.update(run_catalogue(env, chosen, args.report_dir, env.progress, [f.name for f in faults],
                                         shard=part))
        finally:
            if env.workload_phase is not None:
                if env.own_kind and outcome and succeeded(outcome):
                    # The baseline passed again after every undo: the next run reuses the workload.
                    env.progress("faults: keeping the baseline's workload for the next run on this cluster")
                    env.workload_phase.keep()
                else:
                    env.workload_phase.down()
            if env.image_phase is not None:
                env.image_phase.down(cluster_gone=False)
            shutil.rmtree(env.work, ignore_errors=True)  # the run's private keys
        print(f"faults: {outcome['killed']}/{outcome['total']} killed in {outcome['wall_seconds']} s; baseline "
              f"before {outcome['baseline_before']['outcome']}, after {outcome['baseline_after']['outcome']} -> "
              f"{args.report_dir / record_name(outcome.get('shard'))}")

    code = run_cli(act, failure=2)
    if code == 0 and outcome and not succeeded(outcome):
        return 1
    return code

