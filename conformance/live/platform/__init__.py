"""What the cluster runs, installed once per cluster and shared by every run on it.

    kind       our kind cluster: create, reuse by fingerprint, load images, delete
    istio      istio-base, istiod, Istio CNI and the ingress gateway
    collector  the trace collector (Jaeger v2): install, and its query API
    vault      the dev-mode Vault's bootstrap for cortex-api (kv, policy, Kubernetes auth role)
    push       istiod's pushes to the proxies the checks look through, and the drain after one
"""
