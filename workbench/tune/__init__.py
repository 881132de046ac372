"""Optuna storage and encoding, the tuning loop, the per-GPU worker, dispatch tables."""
