"""python -m conformance.images [--stage NAME ...] [--group NAME] [--list] [--bench] [--image-set PATH]

Builds (or reuses) the hermetic image stages on the private dockerd and writes the image set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from conformance.errors import ConformanceError, run_cli
from conformance.images import dockerd, stage
from conformance.images.cache import tree_size
from conformance.paths import cache_root
from conformance.progress import Progress, install


def default_image_set() -> Path:
    return cache_root() / "image-set.json"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB"


def _selected(args: argparse.Namespace) -> list[str]:
    names = list(args.stage or [])
    if args.group:
        names += [s.name for s in stage.REGISTRY.values() if s.group in args.group]
    if not names:
        names = list(stage.REGISTRY)
    unknown = [n for n in names if n not in stage.REGISTRY]
    if unknown:
        raise ConformanceError(f"unknown stage(s): {', '.join(unknown)}; see --list")
    return names


def _list() -> None:
    for name in stage.closure(stage.REGISTRY):
        s = stage.REGISTRY[name]
        deps = f"  (after {', '.join(s.deps)})" if s.deps else ""
        print(f"{s.name:18} {s.group:8} {s.summary}{deps}")


def _table(rows: list[dict]) -> None:
    print(f"{'stage':18} {'result':7} {'this run':>9} {'cold build':>10} {'disk':>10}")
    for row in rows:
        cold = f"{row['build_seconds']:.0f} s" if row["build_seconds"] is not None else "-"
        print(f"{row['stage']:18} {row['result']:7} {row['seconds']:>7.1f} s {cold:>10} {_mib(row['disk']):>10}")


def _rows(outcomes: dict[str, stage.Outcome]) -> list[dict]:
    rows = []
    for name, outcome in outcomes.items():
        rows.append({
            "stage": name,
            "key": outcome.entry.key,
            "result": "hit" if outcome.entry.hit else "miss",
            "seconds": round(outcome.seconds, 2),
            "build_seconds": outcome.entry.result.get("build_seconds"),
            "images_loaded": outcome.loaded_images,
            "disk": tree_size(outcome.entry.path),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.images", description=__doc__.splitlines()[2])
    parser.add_argument("--stage", action="append", metavar="NAME", help="build this stage and what it needs")
    parser.add_argument("--group", action="append", choices=sorted({s.group for s in stage.REGISTRY.values()}),
                        help="build every stage of this group")
    parser.add_argument("--list", action="store_true", help="list the stages and exit")
    parser.add_argument("--kubernetes", metavar="MINOR", help="the Kubernetes minor to build (default: the pinned one)")
    parser.add_argument("--istio", metavar="RELEASE", help="the Istio release to build (default: versions.yaml's)")
    parser.add_argument("--bench", action="store_true",
                        help="run the selection twice and report cold (recorded) and warm times as JSON too")
    parser.add_argument("--prune", action="store_true",
                        help="delete the cache entries no supported version uses any more, and exit")
    parser.add_argument("--image-set", type=Path, default=None, metavar="PATH",
                        help=f"where to write the image set (default {default_image_set()})")
    args = parser.parse_args(argv)
    if args.list:
        _list()
        return 0
    if args.prune:
        def prune() -> None:
            from conformance.images import prune as pruning

            kept = pruning.current()
            freed = pruning.prune(kept=kept)
            print(f"prune: {_mib(freed)} freed in {cache_root()}; {pruning.prune_images(kept)} image(s) removed "
                  "from the private dockerd")
        return run_cli(prune, failure=1)

    def act() -> None:
        from conformance import fixtures

        fixtures.select(args.kubernetes, args.istio)
        names = _selected(args)
        dockerd.start()
        started = time.monotonic()
        outcomes = stage.run(names, progress=install(Progress()))
        total = time.monotonic() - started
        rows = _rows(outcomes)
        _table(rows)
        print(f"total {total:.1f} s")
        report: dict = {"first": {"seconds": round(total, 1), "stages": rows}}
        if args.bench:
            started = time.monotonic()
            warm = stage.run(names)
            warm_total = time.monotonic() - started
            print("\nwarm (every stage cached):")
            warm_rows = _rows(warm)
            _table(warm_rows)
            print(f"total {warm_total:.1f} s")
            report["warm"] = {"seconds": round(warm_total, 1), "stages": warm_rows}
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            bench_file = cache_root() / "bench" / f"{stamp}.json"
            bench_file.parent.mkdir(parents=True, exist_ok=True)
            bench_file.write_text(json.dumps(report, indent=2) + "\n")
            print(f"bench written to {bench_file}")
            outcomes = warm
        image_set_path = args.image_set or default_image_set()
        # The image set covers every stage whose cache matches the current pins, not only this run's.
        entries = {**stage.cached(), **{name: o.entry for name, o in outcomes.items()}}
        stage.write_image_set(stage.image_set(entries), image_set_path)
        print(f"image set: {image_set_path}")

    return run_cli(act, failure=1)


if __name__ == "__main__":
    sys.exit(main())
