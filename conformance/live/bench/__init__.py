"""The live tier's benchmark: `python -m conformance.live.bench` (`nox -s bench -- --live`).

    runner     the live runs on the reused cluster, their medians, and the table beside the last
"""
