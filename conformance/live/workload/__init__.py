"""What the suite deploys for the checks to look at.

    overlay    the conformance overlay (overlays/dev with stand-in images, the run's JWKS and gateway
               certificate) and the client pods
    changes    which of its objects changed between two renderings, and what a kept workload takes in place
"""
