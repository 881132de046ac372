"""Where data and caches live, YAML loading, GPU and model profiles."""
