"""The one error type for mistakes a user can fix (bad input, missing tool, no GPU)."""


class WorkbenchError(Exception):
    """Raised with a message that says what went wrong and what to do; cli.py prints it, exit 2."""


class VariantRejected(WorkbenchError):
    """A variant cannot run this workload (e.g. its logits would overflow shared memory)."""
