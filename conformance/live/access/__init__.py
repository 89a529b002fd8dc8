"""How the suite reaches a cluster, and which cluster it may touch.

    kube       the one kubectl wrapper: one-line errors, waits that end early and save evidence
    diagnose   why a wait would hang (APIServices, namespaces stuck terminating, components down)
    preflight  tools, Docker, contexts, and the safety rule on which cluster is ours
"""
