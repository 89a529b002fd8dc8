"""A fault catalogue run in shards, merged back into one catalogue record for the report.

`nox -s faults -- --shard K/N` runs part K of N of the catalogue (conformance.live.faults.sharding
says which faults), with its own baselines before and after, into ``faults-K-of-N.json``: a file
that cannot be mistaken for the whole catalogue's ``faults.json``. The report merges the N files
into one record of the faults.json shape, which then goes through the same checks and judgements as
a whole catalogue (conformance.report.faults.load).

It refuses, in one line (the report's exit 2), anything that would make the merged record claim
more than was run: a missing shard, a shard twice, a shard of another split (another count, another
list of faults), shards of different commits, manifest digests or platforms, and a directory holding
both a whole catalogue and shards.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conformance.errors import InputError

PATTERN = re.compile(r"faults-(\d+)-of-(\d+)\.json")
GLOB = "faults-*-of-*.json"
_SCHEMA = "cortex-conformance/faults"
_SCHEMA_VERSION = 1


def filename(index: int, count: int) -> str:
    return f"faults-{index}-of-{count}.json"


def parse(value: str) -> tuple[int, int]:
    """`K/N` (1 <= K <= N) as (K, N); one line for anything else."""
    match = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InputError(f"--shard {value}: give K/N with 1 <= K <= N, e.g. --shard 2/3")
    return int(match[1]), int(match[2])


def files(report_dir: Path) -> list[Path]:
    return sorted(p for p in report_dir.glob(GLOB) if PATTERN.fullmatch(p.name))


def _shard(path: Path, data: dict[str, Any]) -> tuple[int, int, list[str], list[str]]:
    """(index, count, the faults split, this shard's faults) as the record states them, checked against its name."""
    shard = data.get("shard")
    if not isinstance(shard, dict) or not all(isinstance(shard.get(k), int) for k in ("index", "count")):
        raise InputError(f"{path}: not a shard's record (no shard.index and shard.count)")
    split, own = shard.get("of"), shard.get("faults")
    if not (isinstance(split, list) and isinstance(own, list)):
        raise InputError(f"{path}: shard.of and shard.faults must list fault names")
    named = PATTERN.fullmatch(path.name)
    if named and (int(named[1]), int(named[2])) != (shard["index"], shard["count"]):
        raise InputError(f"{path}: the file is named for shard {named[1]}/{named[2]} but records shard "
                         f"{shard['index']}/{shard['count']}")
    return shard["index"], shard["count"], [str(n) for n in split], [str(n) for n in own]


def _one(values: dict[str, Any], what: str, hint: str) -> Any:
    """The one value every shard has for `what`, or one line naming which shard has which."""
    distinct = {repr(v) for v in values.values()}
    if len(distinct) > 1:
        raise InputError(f"shards of different {what} cannot make one catalogue: "
                         + ", ".join(f"{name} {_brief(v)}" for name, v in values.items()) + f"; {hint}")
    return next(iter(values.values()))


def _brief(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40,64}", value):
        return value[:12]
    return str(value)


def merge(records: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """One faults.json-shaped record from the shards' records (each already read as a faults record)."""
    if not records:
        raise InputError("no shard records to merge")
    shards = sorted(((*_shard(path, data), path, data) for path, data in records), key=lambda s: s[0])
    names = {s[4].name: s for s in shards}
    # The split first: a shard of another count is foreign, not a duplicate of one with the same index.
    count = _one({n: s[1] for n, s in names.items()}, "counts", "run every shard of one --shard K/N split")
    by_index: dict[int, Path] = {}
    for index, _count, _split, _own, path, _data in shards:
        if index in by_index:
            raise InputError(f"shard {index}/{count} appears twice ({by_index[index].name} and {path.name}): "
                             "keep one run of each shard")
        by_index[index] = path
    split = _one({n: s[2] for n, s in names.items()}, "fault lists",
                 "every shard must split the same faults (the same --only and catalogue)")
    foreign = [s[4].name for s in shards if s[0] > count]
    if foreign:
        raise InputError(f"{', '.join(foreign)}: shard index above the count {count}: not of this split")
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing:
        raise InputError(f"the fault catalogue is missing shard(s) {', '.join(f'{i}/{count}' for i in missing)} "
                         f"(have {', '.join(s[4].name for s in shards)}): a merged catalogue must hold every shard")
    _one({n: (s[5].get("git") or {}).get("commit") for n, s in names.items()}, "commits",
         "run every shard on one commit")
    _one({n: sorted((str(i.get("name")), str(i.get("sha256"))) for i in s[5].get("inputs") or []
                    if isinstance(i, dict)) for n, s in names.items()},
         "manifest digests", "every shard must test the same rendered manifests")
    _one({n: {k: (s[5].get("environment") or {}).get(k) for k in ("kubernetes", "istio", "image_source")}
          for n, s in names.items()}, "platforms", "run every shard on one Kubernetes and Istio pair")
    assigned: dict[str, str] = {}
    for _index, _count, _split, own, path, data in shards:
        for name in own:
            if name in assigned:
                raise InputError(f"fault {name} is in two shards ({assigned[name]} and {path.name})")
            assigned[name] = path.name
        strays = [f.get("name") for f in data.get("faults") or [] if isinstance(f, dict) and f.get("name") not in own]
        if strays:
            raise InputError(f"{path.name} records fault(s) its shard does not hold: {', '.join(map(str, strays))}")
    if sorted(assigned) != sorted(split):
        raise InputError("the shards' faults are not the faults split: "
                         + ", ".join(sorted(set(split) ^ set(assigned))))
    return _merged([s[5] for s in shards], [s[4] for s in shards], count)


def _baseline(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Every shard's baseline as one: passed only if each shard's passed; a shard without one means none."""
    if any(p is None for p in parts):
        return None
    failed = sorted({c for p in parts for c in p.get("failed_controls") or []})
    return {"outcome": "passed" if all(p.get("outcome") == "passed" for p in parts) else "failed",
            "failed_controls": failed, "seconds": round(sum(p.get("seconds") or 0 for p in parts), 1)}


def _merged(datas: list[dict[str, Any]], paths: list[Path], count: int) -> dict[str, Any]:
    first = datas[0]
    catalogue = list(first.get("catalogue") or [])
    order = {name: i for i, name in enumerate(catalogue)}
    faults = sorted((f for d in datas for f in d.get("faults") or []),
                    key=lambda f: order.get(f.get("name"), len(order)))
    dirty = [(d.get("git") or {}).get("dirty") for d in datas]
    not_run: dict[str, str] = {}
    for data in datas:
        not_run.update(data.get("not_run") or {})
    return {
        "schema": _SCHEMA, "schema_version": _SCHEMA_VERSION,
        "started_at": min(str(d.get("started_at") or "") for d in datas) or None,
        "finished_at": max(str(d.get("finished_at") or "") for d in datas) or None,
        "git": {"commit": (first.get("git") or {}).get("commit"),
                "dirty": True if True in dirty else (False if all(x is False for x in dirty) else None)},
        "environment": first.get("environment") or {}, "inputs": first.get("inputs") or [],
        # Shards of one sign-off run share its id; shards of several runs merge, but sign off nothing.
        "signoff_run": first.get("signoff_run") if len({d.get("signoff_run") for d in datas}) == 1 else None,
        "catalogue": catalogue, "not_run": not_run, "faults": faults,
        "baseline_before": _baseline([d.get("baseline_before") for d in datas]),
        "baseline_after": _baseline([d.get("baseline_after") for d in datas]),
        "killed": sum(1 for f in faults if f.get("killed")), "total": len(faults),
        # Shards run side by side (one runner each): the catalogue took as long as its slowest shard.
        "wall_seconds": max((d.get("wall_seconds") or 0 for d in datas), default=None),
        "shards": [{"file": p.name, "index": d["shard"]["index"], "count": count,
                    "faults": list(d["shard"]["faults"]), "wall_seconds": d.get("wall_seconds"),
                    "baseline_before": d.get("baseline_before"), "baseline_after": d.get("baseline_after")}
                   for p, d in zip(paths, datas, strict=True)],
    }


def load(report_dir: Path, read: Any) -> dict[str, Any] | None:
    """The shards in ``report_dir`` merged (None: there are none); `read(path)` reads one faults record.

    A directory with both a whole catalogue (faults.json) and shards is refused: which one the verdict
    rests on would be a guess."""
    found = files(report_dir)
    if not found:
        return None
    if (report_dir / "faults.json").exists():
        raise InputError(f"{report_dir} holds both faults.json (a whole catalogue) and shard records "
                         f"({', '.join(p.name for p in found)}): remove the one that is not this run's")
    return merge([(path, read(path)) for path in found])
