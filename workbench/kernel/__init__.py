"""The kernel family: variants and their knobs, search spaces, nvcc builds, launches."""
