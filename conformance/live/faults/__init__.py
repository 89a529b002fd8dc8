"""The live fault catalogue: proof that the live checks can fail.

fixtures/faults.yaml lists faults; each is applied to the running environment, the live checks
run, and the fault is undone. A fault is *killed* when every control it names failed. A fault
changes the manifests (`overlay`: mutations of the rendered dev overlay, in the format of
fixtures/mutations.yaml, applied in place of overlays/dev) or the cluster outside them
(`cluster`: apply, delete, scale or patch an object, or a named action), or both.

    catalogue  load and check fixtures/faults.yaml (pure)
    actions    the cluster changes and their undo
    runner     baseline, every fault, baseline again; faults.json; `python -m conformance.live.faults`
"""
