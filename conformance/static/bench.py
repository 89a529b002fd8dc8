"""Benchmark of the offline tier, beside Checkov on the same rendered file (`nox -s bench`).

It renders the dev overlay, writes a generated bundle N times larger (the overlay copied into N
namespaces, hosts and references rewritten), and times, on each file:
  - render: `kubectl kustomize overlays/dev` (dev only; a file needs no rendering);
  - engine: load + schema validation + every static rule, in one process (median of --repeat runs);
  - pytest: the whole `pytest conformance/checks -m static --manifests FILE`, start-up included;
  - checkov: `checkov -f FILE --framework kubernetes` when it is installed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conformance.paths import OVERLAYS, REPO
from conformance.static.manifests import load_file, render
from conformance.static.rules import load_all


def scaled_bundle(text: str, copies: int) -> str:
    """The rendered overlay repeated in `copies` namespaces, references rewritten to match."""
    documents = []
    for i in range(copies):
        suffix = f"cortex-dev-{i:02d}"
        documents.append(text.replace("cortex-dev", suffix).replace("api.dev.", f"api.{suffix}."))
    return "---\n".join(documents)


def deployment_bundle(text: str, count: int) -> str:
    """The rendered overlay with its Deployment repeated until there are `count` (a bundle of the size
    of a whole cluster's workloads: 10,000 is about 100 MB)."""
    documents = text.split("\n---\n")
    deployment = next(d for d in documents if "\nkind: Deployment\n" in f"\n{d}")
    name = "\n  name: cortex-api\n"
    copies = [deployment.replace(name, f"\n  name: cortex-api-{i:05d}\n", 1) for i in range(1, count)]
    return "\n---\n".join([*documents, *copies])


def engine_seconds(path: Path, repeat: int) -> tuple[float, float, int, int]:
    """Median wall and CPU seconds of load + every static rule, the object count and gaps found."""
    rules = load_all()
    walls, cpus, objects, gaps = [], [], 0, 0
    for _ in range(repeat):
        # A fresh validator each round, so compiling schemas is counted every time.
        from conformance.static.rules import validity
        validity.validator.cache_clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        bundle = load_file(path)
        found = [g for rule in rules.values() for g in rule(bundle)]
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
        objects, gaps = len(bundle.objects), len(found)
    return statistics.median(walls), statistics.median(cpus), objects, gaps


def timed(command: list[str], cwd: Path = REPO) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU (user + system of the child) seconds of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def checkov(path: Path, exe: str | None) -> dict | None:
    beside = Path(sys.executable).with_name("checkov")
    exe = exe or (str(beside) if beside.exists() else shutil.which("checkov"))
    if exe is None:
        return None
    # Run outside the repository, so Checkov does not pick up our .checkov.yaml and skip checks:
    # the comparison shows what it finds on its own.
    seconds, cpu, proc = timed([exe, "-f", str(path), "--framework", "kubernetes", "--output", "json", "--quiet"],
                               cwd=path.parent)
    failed: list[str] = []
    try:
        report = json.loads(proc.stdout)
        for section in report if isinstance(report, list) else [report]:
            failed += [c["check_id"] for c in section.get("results", {}).get("failed_checks", [])]
    except (json.JSONDecodeError, AttributeError):
        pass
    return {"seconds": seconds, "cpu_seconds": cpu, "failed": sorted(set(failed))}


def checkov_on_mutations(bundle_text: str, out: Path, exe: str) -> None:
    """Which of fixtures/mutations.yaml Checkov notices: a failed check it does not report on dev."""
    from concurrent.futures import ThreadPoolExecutor

    from conformance import fixtures
    from conformance.static.manifests import Bundle, parse
    from conformance.static.mutations import apply

    base = Bundle("dev", "overlays/dev", bundle_text, parse(bundle_text, "overlays/dev"))
    # Harmless changes (must_pass) are for false positives; only changes a rule must catch count here.
    mutations = [m for m in fixtures.load("mutations.yaml")["mutations"] if not m.get("must_pass")]
    baseline_file = out / "mutations" / "dev.yaml"
    baseline_file.parent.mkdir(parents=True, exist_ok=True)
    baseline_file.write_text(bundle_text)
    baseline = set((checkov(baseline_file, exe) or {}).get("failed", []))

    def run(mutation: dict) -> tuple[str, list[str]]:
        mutated = apply(base, mutation["patch"])
        path = out / "mutations" / f"{mutation['id']}.yaml"
        path.write_text(yaml.safe_dump_all([o.doc for o in mutated.objects], sort_keys=False))
        found = set((checkov(path, exe) or {}).get("failed", []))
        return mutation["id"], sorted(found - baseline)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, mutations))
    caught = [(mid, new) for mid, new in results if new]
    print(f"checkov notices {len(caught)} of {len(mutations)} mutations (this suite: {len(mutations)}):")
    for mid, new in caught:
        print(f"  {mid}: {', '.join(new)}")
    missed = sorted(mid for mid, new in results if not new)
    print(f"checkov misses: {', '.join(missed)}")
    (out / "checkov-mutations.json").write_text(json.dumps(dict(results), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.static.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="size of the generated bundle (default 10x)")
    parser.add_argument("--repeat", type=int, default=5, help="engine runs per file; the median is shown")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench", help="where the files go")
    parser.add_argument("--checkov", default=None, help="the checkov to compare with (default: on PATH)")
    parser.add_argument("--mutations", action="store_true",
                        help="also run Checkov on every mutation of fixtures/mutations.yaml (minutes)")
    parser.add_argument("--write-deployments", type=int, default=None, metavar="N",
                        help="only write OUT/deployments-N.yaml, the dev overlay with N Deployments, and exit")
    args = parser.parse_args(argv)
    if args.write_deployments:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"deployments-{args.write_deployments}.yaml"
        path.write_text(deployment_bundle(render(OVERLAYS / "dev"), args.write_deployments))
        print(path)
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    render_times, render_cpu = [], []
    for _ in range(args.repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        text = render(OVERLAYS / "dev")
        render_times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        render_cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    files = {"dev": args.out / "dev.yaml", f"dev x{args.copies}": args.out / f"dev-x{args.copies}.yaml"}
    files["dev"].write_text(text)
    files[f"dev x{args.copies}"].write_text(scaled_bundle(text, args.copies))

    print(f"render (kubectl kustomize overlays/dev): {statistics.median(render_times) * 1000:.0f} ms wall, "
          f"{statistics.median(render_cpu) * 1000:.0f} ms CPU (median)")
    command = [sys.executable, "-m", "pytest", "conformance/checks", "-m", "static", "-q", "-p", "no:cacheprovider",
               "--overlay", "dev", "--report-dir", str(args.out / "reports")]
    whole = [timed(command) for _ in range(args.repeat)]
    print(f"pytest -m static --overlay dev (start-up, render, schemas, every check): "
          f"{statistics.median(w[0] for w in whole):.2f} s wall, {statistics.median(w[1] for w in whole):.2f} s CPU "
          "(median)")
    rows = []
    for name, path in files.items():
        wall, cpu, objects, gaps = engine_seconds(path, args.repeat)
        pytest_wall, pytest_cpu, _ = timed([sys.executable, "-m", "pytest", "conformance/checks", "-m", "static", "-q",
                                "-p", "no:cacheprovider", "--manifests", str(path),
                                "--report-dir", str(args.out / "reports")])
        cov = checkov(path, args.checkov)
        rows.append((name, objects, wall, cpu, pytest_wall, cov, gaps, pytest_cpu))
        print(f"{name:>9}: {objects:4d} objects | engine {wall * 1000:4.0f} ms wall {cpu * 1000:4.0f} ms CPU "
              f"({wall / objects * 1000:.1f} ms/object) | pytest -m static {pytest_wall:5.2f} s wall "
              f"{pytest_cpu:5.2f} s CPU | "
              + (f"checkov {cov['seconds']:5.2f} s wall {cov['cpu_seconds']:5.2f} s CPU" if cov
                 else "checkov not installed")
              + f" | {gaps} gaps")
    (small, big) = rows[0], rows[1]
    ratio = big[2] / small[2]
    print(f"engine time x{big[1] / small[1]:.0f} objects -> x{ratio:.1f} wall "
          f"({'linear or better' if ratio <= big[1] / small[1] * 1.2 else 'SUPERLINEAR'})")
    if small[5] is not None:
        justified = set(yaml.safe_load((REPO / ".checkov.yaml").read_text()).get("skip-check", []))
        shown = [f"{c} (justified in .checkov.yaml)" if c in justified else f"{c} (UNJUSTIFIED)"
                 for c in small[5]["failed"]]
        print(f"checkov failed checks on dev: {', '.join(shown) or 'none'}")
    if args.mutations and small[5] is not None:
        checkov_on_mutations(text, args.out, args.checkov or "checkov")
    summary = {"render_ms": statistics.median(render_times) * 1000,
               "render_cpu_ms": statistics.median(render_cpu) * 1000,
               "files": [{"name": r[0], "objects": r[1], "engine_wall_s": r[2], "engine_cpu_s": r[3],
                          "pytest_wall_s": r[4], "pytest_cpu_s": r[7], "checkov": r[5], "gaps": r[6]}
                         for r in rows]}
    (args.out / "bench.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
