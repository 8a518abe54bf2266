"""Many runs at once: simplex points, executors (local, Ray), capacity sweeps, comparisons."""
