"""PR runs: baselines, the verify re-run of a suspected regression, the verdict and its GitHub comment."""
