"""What the live checks observe, and the pure judgements of it.

    traffic      probes from client pods and through the ingress gateway
    traces       the collector's answers read into spans and report evidence (pure)
    tokens       the run's signing keys and one JWT per case of fixtures/expectations/jwt.yaml
    observe      the cluster's state as the checks read it: pods as admitted, endpoints, the HPA
    judge        the gaps a piece of evidence shows (pure)
    experiments  the checks that disturb the workload, scheduled together
"""
