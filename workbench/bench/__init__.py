"""`workbench bench`: our kernels against what users run, same harness, one run."""
