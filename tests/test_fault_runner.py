"""The fault catalogue's own judgements: which controls a run failed, when a fault counts as killed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from conformance.live.faults import runner, undone
from conformance.live.faults.catalogue import Fault


def _results(*outcomes: tuple[str, str, str]) -> dict:
    return {"results": [{"test": f"t::{c}", "control": c, "outcome": o, "message": m} for c, o, m in outcomes]}


def test_failed_and_errored_checks_count_passed_and_skipped_do_not():
    results = _results(("MTLS-01", "failed", "plaintext got HTTP 200"), ("JWT-02", "error", "setup broke"),
                       ("NET-02", "passed", ""), ("VAULT-02", "skipped", "no Vault"))
    checks = runner.failed_checks(results)
    assert [(c["control"], c["outcome"]) for c in checks] == [("MTLS-01", "failed"), ("JWT-02", "error")]
    assert runner.failed_controls(checks) == {"MTLS-01": ["plaintext got HTTP 200"], "JWT-02": ["setup broke"]}


def test_a_catalogue_succeeds_only_with_every_fault_killed_and_undone_and_both_baselines_green():
    killed = {"killed": True, "undone": True}
    document = {"baseline_before": {"outcome": "passed"}, "baseline_after": {"outcome": "passed"},
                "faults": [killed, killed]}
    assert runner.succeeded(document)
    assert not runner.succeeded({**document, "faults": [killed, {"killed": False, "undone": True}]})
    assert not runner.succeeded({**document, "faults": [{"killed": True, "undone": False}]})
    assert not runner.succeeded({**document, "baseline_after": {"outcome": "failed"}})
    assert not runner.succeeded({**document, "baseline_after": None})


def test_only_an_istio_change_waits_for_the_push():
    """An overlay fault waits for the proxies only when an Istio resource differs (Telemetry here), not for
    a Deployment or HPA change, which reaches no proxy."""
    base = ("apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec: {a: 1}\n---\n"
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec: {b: 1}\n")
    assert runner._istio_changed(base, base.replace("a: 1", "a: 0"))
    assert not runner._istio_changed(base, base.replace("b: 1", "b: 2"))


def test_drain_comes_from_the_installed_mesh_config():
    """The wait after a push covers the drain the platform installs (fixtures/istio/istiod.yaml)."""
    from conformance.live.platform import push

    assert 0 < push.drain_seconds() <= 10


def test_checks_wait_out_the_drain_of_the_last_push_only(monkeypatch):
    """The drain after a push delays the next checks, not the next fault's apply: settle() sleeps only for
    what is left of it, and nothing when no push came."""
    from conformance.live.platform import push

    monkeypatch.setattr(push, "drain_seconds", lambda: -0.9)  # the drain plus its 1 s margin: 0.1 s
    drain = push.Drain()
    assert drain.settle() == 0.0
    drain.pushed()
    assert 0 < drain.settle() <= 0.1
    assert drain.settle() == 0.0


def test_a_push_that_never_comes_is_said_not_raised(monkeypatch):
    """A change no proxy the checks use takes pushes nothing: the change is made, the timeout is handed to
    whoever says it (the runner's log, the workload's progress) or dropped, and the checks still run."""
    from conformance.errors import WaitTimeout
    from conformance.live.platform import push

    def never(env, before, what, timeout):
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for the proxies to run the {what}")

    monkeypatch.setattr(push, "proxy_versions", lambda env: {})
    monkeypatch.setattr(push, "wait_mesh_pushed", never)
    made, said = [], []
    push.pushing(None, lambda: made.append(1), "policy", mesh=True, timeout=3, said=said.append)
    push.pushing(None, lambda: made.append(2), "policy", mesh=True, timeout=3)
    assert made == [1, 2]
    assert said == ["timed out after 3s waiting for the proxies to run the policy"]


def test_a_push_counts_once_every_replica_of_the_changed_kind_runs_it():
    """One changed cortex-api sidecar is not enough while the other still runs the old config; a gateway
    that nothing changed does not hold the wait up."""
    from conformance.live.platform.push import judge_pushed

    before = {"sidecar:a": "1|1|r", "sidecar:b": "1|1|r", "gateway:istio-ingress/g": "1|1|r"}
    assert not judge_pushed(before, before)
    assert not judge_pushed(before, {**before, "sidecar:a": "2|1|r"})
    assert judge_pushed(before, {**before, "sidecar:a": "2|1|r", "sidecar:b": "2|1|r"})
    assert judge_pushed(before, {**before, "gateway:istio-ingress/g": "1|1|s"})
    assert judge_pushed(before, {"sidecar:c": "5|5|r", "gateway:istio-ingress/g": "1|1|r"})  # new pods


def test_overlay_only_faults_run_back_to_back_after_the_rest():
    """Faults that only change the overlay run last and in a row, so each one's overlay replaces the one
    before instead of a restore and a second rollout; catalogue order holds within each group."""

    def fault(name, **changes):
        return Fault(name=name, description=name, expect=("MTLS-01",), **changes)

    patch = ({"target": "Deployment/cortex-api", "path": "spec.replicas", "value": 1},)
    pods = ({"target": "Deployment/cortex-api", "path": "spec.template.spec.serviceAccountName", "value": "x"},)
    step = ({"call": "vault-sealed"},)
    faults = [fault("a", overlay=pods), fault("b", cluster=step), fault("c", overlay=patch, restart=True),
              fault("d", overlay=patch), fault("e", overlay=patch, cluster=step), fault("f", overlay=pods),
              fault("g", overlay=patch)]
    # The overlay-only faults that roll out new pods come last, together: one rollout each; the restart
    # faults end the group with cluster steps, together (restart_chained).
    assert [f.name for f in runner.running_order(faults)] == ["b", "e", "c", "d", "g", "a", "f"]
    assert [runner.chained(f) for f in faults] == [True, False, False, True, False, True, True]
    assert [runner.new_pods(f) for f in faults] == [True, False, False, False, False, True, False]


def test_faults_whose_pods_never_come_up_roll_out_first_and_leave_the_pods_before():
    """A fault with a short rollout bound (its pods are not expected to come up) runs first among those
    that roll out new pods, so the pods it leaves serving are the baseline's; serving_pods tracks whose
    pods serve, so a stall over another fault's pods is started again from the baseline's."""

    pods = ({"target": "Deployment/cortex-api", "path": "spec.template.spec.serviceAccountName", "value": "x"},)
    up = Fault(name="up", description="up", expect=("SEC-02",), overlay=pods)
    stalls = Fault(name="stalls", description="stalls", expect=("VAULT-03",), overlay=pods, rollout_seconds=45)
    assert [f.name for f in runner.running_order([up, stalls])] == ["stalls", "up"]

    replaced = {"undo": runner.REPLACED}
    assert runner.serving_pods(stalls, {**replaced, "rollout_error": "timed out"}, None) is None
    assert runner.serving_pods(up, {**replaced, "rollout_error": None}, None) is up
    assert runner.serving_pods(stalls, {**replaced, "rollout_error": "timed out"}, up) is up
    assert runner.serving_pods(stalls, {**replaced, "rollout_error": "timed out", "restored": True}, up) is None
    assert runner.serving_pods(up, {"undo": None}, up) is None  # undone: the baseline's again


class _Kube:
    """kubectl as the cluster answers it, for the undo look's own judgements (the look itself runs live)."""

    def __init__(self, diff: tuple[int, str, str], objects: dict[str, dict | None]) -> None:
        self.diff, self.objects = diff, objects

    def run(self, *args: str, **_: object):
        if args[0] == "diff":
            code, out, err = self.diff
            return SimpleNamespace(returncode=code, stdout=out, stderr=err)
        obj = self.objects.get(f"{args[1]}/{args[2]}")
        if obj is None:
            return SimpleNamespace(returncode=1, stdout="", stderr=f'Error from server (NotFound): "{args[2]}"')
        return SimpleNamespace(returncode=0, stdout=json.dumps(obj), stderr="")


def _env(diff: tuple[int, str, str], objects: dict[str, dict | None]):
    workload = SimpleNamespace(rollout_error=None, wait_rollout=lambda timeout: None)
    return SimpleNamespace(kube=_Kube(diff, objects), workload=workload)


def test_an_undo_that_left_the_overlay_changed_is_named():
    """kubectl diff exits 1 when the baseline's dry run would change an object: each is named by its file."""
    out = ("diff -u -N /tmp/LIVE-123/networking.istio.io.v1.DestinationRule.cortex-dev.cortex-api "
           "/tmp/MERGED-456/networking.istio.io.v1.DestinationRule.cortex-dev.cortex-api\n--- a\n+++ b\n")
    fault = Fault(name="f", description="f", expect=("MTLS-02",), overlay=({"op": "x"},))
    assert undone.leftovers(_env((1, out, ""), {}), fault, "baseline") == [
        "the overlay's objects differ from the baseline's: "
        "networking.istio.io.v1.DestinationRule.cortex-dev.cortex-api"]
    assert undone.leftovers(_env((0, "", ""), {}), fault, "baseline") == []
    assert undone.leftovers(_env((2, "", "error: bad"), {}), fault, "baseline") == [
        "could not compare the overlay with the baseline (kubectl diff exit 2: error: bad)"]


def test_each_cluster_step_is_seen_undone_or_named():
    """What a step created is gone, what it deleted is back, what it scaled is Ready, its patch is gone."""
    steps = ({"apply": {"kind": "AuthorizationPolicy", "metadata": {"name": "allow-all", "namespace": "ns"}}},
             {"delete": {"kind": "MutatingWebhookConfiguration", "name": "injector"}},
             {"scale": {"kind": "Deployment", "name": "vault-injector", "namespace": "vault", "replicas": 0}},
             {"patch": {"kind": "Deployment", "name": "d", "namespace": "n", "patch": {"spec": {"paused": True}}}})
    fault = Fault(name="f", description="f", expect=("JWT-02",), cluster=steps)
    left = {"AuthorizationPolicy/allow-all": {}, "MutatingWebhookConfiguration/injector": None,
            "Deployment/vault-injector": {"spec": {"replicas": 0}, "status": {}},
            "Deployment/d": {"spec": {"paused": True}}}
    assert undone.leftovers(_env((0, "", ""), left), fault, "b") == [
        "AuthorizationPolicy allow-all the fault created is still there",
        "MutatingWebhookConfiguration injector the fault deleted was not restored",
        "Deployment vault-injector is not back to its replicas (wants 0, 0 Ready)",
        "Deployment d still holds the fault's patch"]
    back = {"AuthorizationPolicy/allow-all": None, "MutatingWebhookConfiguration/injector": {},
            "Deployment/vault-injector": {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}},
            "Deployment/d": {"spec": {}}}
    assert undone.leftovers(_env((0, "", ""), back), fault, "b") == []


def test_restart_faults_run_together_and_leave_their_pods_to_the_next_restart(monkeypatch):
    """Two restart faults in a row: the first one's undo reverts its change but not its pods, which the second
    one's restart replaces (one rollout instead of two); the last one undoes everything. A restart fault that
    goes wrong restarts its pods on undo, so the next fault never begins from them."""
    from types import SimpleNamespace

    from conformance.live.faults.catalogue import Fault

    step = ({"delete": {"kind": "MutatingWebhookConfiguration", "name": "x"}},)
    label = ({"target": "Namespace/cortex-dev", "path": "metadata.labels[istio-injection]", "value": "disabled"},)
    slow = Fault(name="slow", description="slow", expect=("MTLS-03",), restart=True, cluster=step)
    quick = Fault(name="quick", description="quick", expect=("VAULT-02",), restart=True, cluster=step,
                  rollout_seconds=60)
    other = Fault(name="other", description="other", expect=("JWT-02",), cluster=({"call": "vault-sealed"},))
    plain = Fault(name="plain", description="plain", expect=("MTLS-01",), overlay=label)
    order = runner.running_order([slow, plain, quick, other])
    assert [f.name for f in order] == ["other", "quick", "slow", "plain"]
    assert [runner.restart_chained(f, n) for f, n in zip(order, [*order[1:], None], strict=True)] == [
        False, True, False, False]

    restarts: list[str] = []
    workload = SimpleNamespace(restart=lambda timeout=None: restarts.append("restart"), rollout_error=None,
                               wait_rollout=lambda timeout=None: None, rendered="")
    env = SimpleNamespace(workload=workload)
    monkeypatch.setattr(runner.actions, "run_step", lambda env, step: lambda: restarts.append("step undone"))
    monkeypatch.setattr(runner, "run_checks", lambda *args, **kwargs: {"results": []})
    monkeypatch.setattr(runner.undone, "leftovers", lambda env, fault, baseline: [])
    kept = runner._one(env, quick, Path("/nonexistent"), lambda line: None, "", keep_pods=True)
    assert (kept["undo"], restarts) == (runner.PODS_REPLACED, ["restart", "step undone"])
    restarts.clear()
    last = runner._one(env, slow, Path("/nonexistent"), lambda line: None, "")
    assert (last.get("undo"), restarts) == (None, ["restart", "step undone", "restart"])
    restarts.clear()
    monkeypatch.setattr(runner, "run_checks", lambda *args, **kwargs: (_ for _ in ()).throw(
        runner.ConformanceError("checks could not run")))
    failed = runner._one(env, quick, Path("/nonexistent"), lambda line: None, "", keep_pods=True)
    assert failed.get("undo") is None
    assert restarts == ["restart", "step undone", "restart"]


def test_cluster_steps_go_before_the_overlay_and_are_undone_after_it(monkeypatch):
    """What a fault's new pods need (a Vault role) exists before its overlay rolls them out, and goes only after
    the baseline's pods are back: the undo runs in reverse."""
    role = ({"call": {"name": "vault-role", "role": "any"}},)
    annotation = ({"target": "Deployment/cortex-api", "path": "spec.template.metadata.annotations[x]", "value": "y"},)
    fault = Fault(name="both", description="both", expect=("VAULT-03",), cluster=role, overlay=annotation)
    happened: list[str] = []
    workload = SimpleNamespace(render_overlay=lambda *args, **kwargs: "rendered", rollout_error=None, rendered="")
    env = SimpleNamespace(workload=workload, work=Path("/nonexistent"))
    monkeypatch.setattr(runner, "_faulted_overlay", lambda env, fault: Path("/nonexistent"))
    monkeypatch.setattr(runner.actions, "run_step", lambda env, step: (
        happened.append("role made"), lambda: happened.append("role removed"))[1])
    monkeypatch.setattr(runner, "_apply_and_push", lambda env, rendered, what, progress, wait=None, undoing=False:
                        happened.append(f"{rendered or 'baseline'} applied"))
    undos, restored = runner.apply_fault(env, fault, lambda line: None, "")
    assert (happened, restored) == (["role made", "rendered applied"], False)
    happened.clear()
    assert runner.undo_all(undos) == []
    assert happened == ["baseline applied", "role removed"]


def test_the_checks_of_a_catalogue_select_its_platform(monkeypatch, tmp_path):
    """Each in-process pytest run selects its pins from its own options: a catalogue on --kubernetes 1.35 passes
    the minor on, or its checks would judge (and record) the default platform."""
    seen: list[list[str]] = []
    monkeypatch.setattr(runner.pytest, "main", lambda args, plugins: seen.append(args))
    (tmp_path / "results-x.json").write_text("{}")
    env = SimpleNamespace(options=SimpleNamespace(kubernetes="1.35", istio=None))
    runner.run_checks(env, "x", tmp_path, ["JWT-02"])
    assert seen[0][seen[0].index("--kubernetes") + 1] == "1.35"
    assert "--istio" not in seen[0]


def test_the_catalogue_takes_the_platform_options(tmp_path, capsys):
    """--kubernetes and --istio as `nox -s conformance` takes them; a minor not pinned is one line, exit 2, before
    any earlier record is cleared."""
    (tmp_path / "faults.json").write_text("{}")
    assert runner.main(["--kubernetes", "1.99", "--report-dir", str(tmp_path)]) == 2
    assert "1.99" in capsys.readouterr().err
    assert (tmp_path / "faults.json").exists()
